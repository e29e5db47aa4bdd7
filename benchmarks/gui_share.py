"""The app's share of ``bplab train``'s speed, and its stalls, on one project.

    python benchmarks/gui_share.py resources/examples/spiral.bplab.json 10
    python benchmarks/gui_share.py resources/examples/mnist_cnn.bplab.json 4

Each round runs the app offscreen on the project (``bplab PROJECT --train --quit-after``,
every plot live; its JSON line gives the worker's steps per second and the GUI event loop's
stall percentiles) and, in a fresh process right before or after it (the order alternates
from round to round), ``bplab train``'s loop (``Trainer.run()`` through the run recorder)
over the same whole run. The share is the ratio of the two, round by round, so a slow
moment of a shared machine falls on both sides of one ratio; the median over the rounds is
the figure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

HEADLESS = """
import json, sys, time
import numpy as np
from bplab.io.project import load_project, project_base_dir
from bplab.runs import RunRecorder
from bplab.training import Trainer
path = sys.argv[1]
trainer = Trainer(load_project(path), base_dir=project_base_dir(path))  # the whole run
t, n = time.perf_counter(), 0
with np.errstate(over="ignore", invalid="ignore"):
    for _ in RunRecorder().watch(trainer.run()):
        n += 1
print(json.dumps({"steps": n, "steps_per_second": n / (time.perf_counter() - t)}))
"""


def last_json(cmd: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(project: str, rounds: int) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    shares, p99s = [], []
    app = [sys.executable, "-m", "bplab.ui", project, "--train", "--quit-after", "300"]
    train = [sys.executable, "-c", HEADLESS, project]
    for r in range(rounds):
        # app first in even rounds, bplab train first in odd ones: a machine that speeds up
        # or slows down during a batch favours neither side
        if r % 2 == 0:
            gui = last_json(app, env)
            headless = last_json(train)
        else:
            headless = last_json(train)
            gui = last_json(app, env)
        if headless["steps"] != gui["steps"]:
            raise SystemExit(f"the app took {gui['steps']} steps, bplab train "
                             f"{headless['steps']}: not the same run")
        shares.append(gui["steps_per_second"] / headless["steps_per_second"])
        p99s.append(gui["stall_ms"]["p99"])
        print(f"round {r}: app {gui['steps_per_second']:.1f} steps/s, bplab train "
              f"{headless['steps_per_second']:.1f}: {shares[-1]:.2f}; stall p99 "
              f"{gui['stall_ms']['p99']} ms, max {gui['stall_ms']['max']} ms", flush=True)
        time.sleep(0.5)
    print(f"{project}: share median {statistics.median(shares):.2f} "
          f"(min {min(shares):.2f}, max {max(shares):.2f}); stall p99 median "
          f"{statistics.median(p99s):.1f} ms (max {max(p99s):.1f}) over {rounds} rounds")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8)

"""The kill test: SIGKILL at random moments of a checkpoint save and of a project save with
several MB of weights. The file always loads, old or new; no temporary file survives the
next start (the next save, ``bplab train --checkpoint`` or opening the project).

A forked child saves in a loop and writes ``saving N`` before and ``saved N`` after each
save to a pipe; after a random count of ``saving`` lines the parent waits a random delay (up
to the length of the previous save, or until the save ends) and kills it, so the kill lands
at a random moment of a save (several MB, fsync, rename): both outcomes, old and new, occur.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time

import pytest

from bplab.cli import main
from bplab.io.loading import read_checkpoint
from bplab.io.project import load_project, new_project, save_project
from bplab.training import Trainer

pytestmark = pytest.mark.slow

KILLS = 20

def _child(kind, path, out) -> None:
    """The saving loop, in a forked child (bplab is imported already: no start-up cost)."""
    project = new_project()
    if kind == "checkpoint":
        nodes = project["network"]["nodes"]
        nodes[1]["units"] = nodes[3]["units"] = 1024  # about 1M weights: 4 MB, 12 MB with Adam
        trainer = Trainer(project)
        if path.exists():
            trainer.load_checkpoint(path)  # resume: step numbers go on across children
        runs = trainer.run()
    blob = [i / 7 for i in range(250_000)]  # several MB of JSON
    n = int(load_project(path)["name"][1:]) if kind == "project" and path.exists() else 0
    while True:
        if kind == "checkpoint":
            next(runs)
            n = trainer.step_count
        else:
            n += 1
        out.write(f"saving {n}\n")
        out.flush()
        if kind == "checkpoint":
            trainer.save_checkpoint(path)
        else:
            save_project(path, {**project, "name": f"v{n}", "ui": {"weights": blob}})
        out.write(f"saved {n}\n")
        out.flush()


def _temps(folder):
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def _kill_during_saves(kind, path, rng):
    """Fork a saving child; kill it at a random moment of a save. Returns (last saved,
    in flight): the save the kill interrupted (or the one it followed) and the one before."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: save until killed
        os.close(read_fd)
        try:
            _child(kind, path, os.fdopen(write_fd, "w"))
        finally:
            os._exit(1)
    os.close(write_fd)
    target, saved, flight, seen, took = rng.randint(2, 3), None, None, 0, 0.0
    with os.fdopen(read_fd) as lines:
        started = 0.0
        for line in lines:
            word, n = line.split()
            if word == "saved":
                saved, took = int(n), time.monotonic() - started
                continue
            flight, seen, started = int(n), seen + 1, time.monotonic()
            if seen >= target:
                # somewhere in this save (as long as the last one took), or just after it
                select.select([lines], [], [], rng.uniform(0.0, 1.1 * took))
                os.kill(pid, signal.SIGKILL)
                break
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return saved, flight


def _loaded_version(kind, path):
    if kind == "checkpoint":
        _, meta = read_checkpoint(path)
        return meta["step"]
    return int(load_project(path)["name"][1:])


@pytest.mark.parametrize("kind", ["checkpoint", "project"])
def test_sigkill_during_saves_never_loses_the_file(tmp_path, kind, capsys):
    rng = random.Random(13)
    path = tmp_path / ("run.ckpt.npz" if kind == "checkpoint" else "p.json")
    previous, outcomes = None, []
    for _ in range(KILLS):
        saved, flight = _kill_during_saves(kind, path, rng)
        assert path.exists() or previous is None
        if path.exists():
            version = _loaded_version(kind, path)  # loads: never half a file
            # new (the save the kill interrupted, or the last one completed) or old
            assert version in (saved, flight) or (saved is None and version == previous)
            outcomes.append("new" if version == flight else "old")
            previous = version
        assert len(_temps(tmp_path)) <= 1  # the dead writer's, removed by the next save
    assert path.exists()
    # The next start removes the orphan.
    if kind == "project":
        load_project(path)
    else:
        project = tmp_path / "p.json"
        p = new_project()
        p["network"]["nodes"][1]["units"] = p["network"]["nodes"][3]["units"] = 1024
        save_project(project, p)
        assert main(["train", str(project), "--steps", "0", "--quiet",
                     "--checkpoint", str(path)]) == 0
        capsys.readouterr()
    assert _temps(tmp_path) == []
    print(kind, outcomes)

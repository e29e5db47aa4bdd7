"""``bplab bench``: read the options, run the sections, print the table or the JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bplab.backend import cupy_status
from bplab.bench.machine import load_torch, machine_info
from bplab.bench.processes import race, thread_count
from bplab.bench.report import json_default, print_report
from bplab.bench.sections import (
    Options,
    bench_checkpointing,
    bench_diagnostics,
    bench_memory,
    bench_step_split,
    bench_workload,
)
from bplab.bench.workloads import WORKLOADS
from bplab.errors import ConfigError


def run_bench(args: argparse.Namespace) -> int:
    quick = bool(getattr(args, "quick", False))
    keys = [k.strip().upper() for k in (getattr(args, "workloads", None) or "").split(",")
            if k.strip()] or list(WORKLOADS)
    bad = [k for k in keys if k not in WORKLOADS]
    if bad:
        raise ConfigError(f"bench: unknown workload {bad[0]!r}; choose from "
                          f"{', '.join(WORKLOADS)}")
    in_process = bool(getattr(args, "in_process", False))
    repeats = getattr(args, "repeats", None) or (
        (2 if quick else 5) if in_process else (1 if quick else 3))
    if repeats < 1:
        raise ConfigError(f"bench: repeats must be a positive integer, received {repeats!r}")
    batch = getattr(args, "batch", None)
    if batch is not None and batch < 1:
        raise ConfigError(f"bench: batch must be a positive integer, received {batch!r}")
    choice = getattr(args, "backend", "all") or "all"
    cupy_backend, reason = cupy_status()
    backends: tuple[str, ...]
    if choice == "numpy":
        backends = ("numpy",)
    elif choice == "cupy":
        if cupy_backend is None:
            print(f"bench: the cupy backend is unavailable here ({reason}); nothing to run",
                  file=sys.stderr)
            if getattr(args, "json", False):
                print(json.dumps({"skipped": reason}))
            return 0
        backends = ("cupy",)
    else:
        backends = ("numpy", "cupy") if cupy_backend is not None else ("numpy",)
    opts = Options(quick, repeats, keys, backends, batch, load_torch())
    threads = thread_count(getattr(args, "threads", None))

    res: dict[str, Any] = {"machine": machine_info(), "quick": quick, "repeats": repeats,
                           "backends": list(backends), "workloads": [],
                           "method": "in-process" if in_process else "per-process",
                           "threads": None if in_process else threads}
    for k in keys:
        if in_process:
            res["workloads"].append(bench_workload(WORKLOADS[k], opts))
        else:
            res["workloads"].append(race(WORKLOADS[k], quick=quick, repeats=repeats,
                                         backends=backends, batch=batch,
                                         has_torch=opts.torch is not None, threads=threads))
    if "numpy" in backends and batch is None:
        # The extra sections measure the CPU workloads as defined; with --batch (the GPU
        # comparison at batch 4096) they would take minutes and answer another question.
        extra = [k for k in ("A", "C") if k in keys]
        res["diagnostics"] = [bench_diagnostics(WORKLOADS[k], opts) for k in extra]
        res["step_split"] = [bench_step_split(WORKLOADS[k], opts)
                             for k in ("A", "D") if k in keys]
        res["memory"] = [bench_memory(WORKLOADS[k], opts) for k in extra]
        if "D" in keys:
            res["checkpointing"] = bench_checkpointing(
                Options(quick, repeats, keys, backends, None, opts.torch))
    if getattr(args, "json", False):
        print(json.dumps(res, indent=2, default=json_default))
    else:
        print_report(res)
    return 0

"""The ``bplab`` command line: the app, and the same projects headless.

    bplab [PROJECT] [--train --quit-after S --screenshot PNG]   open the desktop app
    bplab train PROJECT [--epochs N | --steps N] ...              train with a progress bar
    bplab export PROJECT --weights W -o PATH                      convert weights
    bplab export PROJECT -o DIR --bundle [--weights W]            the run as a PyTorch folder
    bplab gradcheck PROJECT                                       float64 check of the network
    bplab datasets                                                the built-in datasets
    bplab fix PROJECT SUMMARY.json FIX_ID -o OUT.json             apply a diagnosis fix
    bplab runs PROJECT [--json]                                   the recorded runs side by side
    bplab bench [--quick] [--json] [--in-process]                 speed against PyTorch/numpy

Bad input (missing file, invalid JSON, invalid network, malformed CSV) prints one paragraph
naming the problem and the place, and exits with status 2; never a traceback. Every file is
read through :mod:`bplab.io.loading`. A first word that is neither a sub-command nor a file
(``bplab trian x.json``) is a mistyped command: "did you mean 'train'?", exit 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bplab import __version__
from bplab.argtypes import non_negative_int
from bplab.errors import BplabError

SUBCOMMANDS = ("train", "export", "gradcheck", "datasets", "bench", "fix", "runs")
EXPORT_SUFFIXES = (".safetensors", ".npz", ".onnx", ".py")


class UsageError(BplabError):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        print(f"bplab {__version__}")
        return 0
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        mistyped = _unknown_command(argv[0]) if argv else None
        if mistyped:
            print(f"bplab: error: {mistyped}", file=sys.stderr)
            return 2
        return _launch_app(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BplabError as exc:
        _fail(str(exc))
    except RuntimeError as exc:
        from bplab.backend import BackendUnavailable  # (numpy is loaded by now)

        if not isinstance(exc, BackendUnavailable):
            raise
        _fail(str(exc))  # "the cupy backend cannot run here: CuPy is not importable..."
    except MemoryError as exc:  # the last resort: the memory estimate should refuse first
        _fail(f"out of memory{': ' + str(exc) if str(exc) else ''}; make the network or the "
              "data set smaller")
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".strip(": "))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 2


def _unknown_command(word: str) -> str | None:
    """Why ``word`` is neither a sub-command nor a project the app could open, or None.

    A word that is no file, has no suffix or folder and is not a flag was meant as a
    command (``bplab trian x.json``): opening the app on it would only confuse.
    """
    if word.startswith("-") or os.path.exists(word) or "." in word or os.sep in word:
        return None
    import difflib

    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        return f"unknown command {word!r}, did you mean {close[0]!r}?"
    return (f"unknown command {word!r}: the commands are {', '.join(SUBCOMMANDS)}; "
            "`bplab PROJECT.json` opens a project in the app")


def _positive_int(text: str) -> int:
    """argparse type for counts that must be at least 1 (samples, directions)."""
    v = non_negative_int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, received {v}")
    return v


def _fail(message: str) -> None:
    print(f"bplab: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _launch_app(argv: list[str]) -> int:
    try:
        from bplab.ui.app import main as app_main
    except ImportError as exc:
        print(
            f"bplab: error: the desktop app cannot start: {exc}. Install the app's "
            "dependencies with `pip install -e .`; the headless commands are: "
            + ", ".join(SUBCOMMANDS),
            file=sys.stderr,
        )
        return 2
    return int(app_main(argv) or 0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bplab",
        description="A lab for training neural networks by backpropagation and seeing it happen. "
        "Without a subcommand, `bplab [PROJECT]` opens the desktop app.",
    )
    p.add_argument("-V", "--version", action="version", version=f"bplab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a project headless with a progress bar")
    t.add_argument("project", help="project file (.json)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=non_negative_int, help="train this many epochs")
    g.add_argument("--steps", type=non_negative_int, help="train this many optimiser steps")
    t.add_argument("--backend", choices=("auto", "numpy", "cupy"), help="array backend")
    t.add_argument("--dtype", choices=("float32", "float64"), help="floating-point type")
    t.add_argument(
        "--save-initial", metavar="PATH", help="write the weights before the first step"
    )
    t.add_argument(
        "--export",
        metavar="PATH",
        help="write the trained weights (.safetensors, .npz, .onnx, .py)",
    )
    t.add_argument("--metrics", metavar="PATH.csv", help="write per-epoch metrics as CSV")
    t.add_argument(
        "--checkpoint",
        metavar="PATH.npz",
        help="resume from this checkpoint if it exists, and save one there at the end",
    )
    t.add_argument("--seed", type=int, help="override the project's training seed")
    t.add_argument("--quiet", action="store_true", help="no progress bar; print only the summary")
    t.add_argument("--summary", metavar="PATH.json", help="write the run's outcome as JSON: "
                   "steps, losses, the divergence (its layer) and the diagnosis with its fixes")
    t.add_argument("--record", action="store_true", help="append this run to the project's runs")
    t.add_argument("--allow-nonfinite", action="store_true", help="write the checkpoint and "
                   "exports even when the run diverged or the weights hold NaN/Inf")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="convert a project's weights to another format")
    e.add_argument("project")
    e.add_argument(
        "--weights", metavar="W", help=".safetensors, .npz or checkpoint .npz (with --bundle: "
        "the weights the PyTorch run starts from; default: the project's initialisation)"
    )
    e.add_argument("-o", "--output", required=True, metavar="PATH")
    e.add_argument("--bundle", action="store_true",
                   help="write a folder PATH that reproduces the run in PyTorch (model.py, "
                   "train.py, data, initial weights; runs under torchrun)")
    e.add_argument("--allow-nonfinite", action="store_true",
                   help="write weights that hold NaN or Inf (refused by default)")
    e.set_defaults(func=cmd_export)

    c = sub.add_parser("gradcheck", help="float64 gradient check of the whole network on its data")
    c.add_argument("project")
    c.add_argument("--samples", type=_positive_int, default=4,
                   help="batch size of the check (default 4)")
    c.add_argument(
        "--directions",
        type=_positive_int,
        default=None,
        help="random directions per tensor instead of every element (wide nets)",
    )
    c.set_defaults(func=cmd_gradcheck)

    d = sub.add_parser("datasets", help="list the built-in datasets")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_datasets)

    b = sub.add_parser(
        "bench", help="measure training speed against PyTorch and hand-written numpy"
    )
    b.add_argument("--quick", action="store_true", help="a tiny smoke run (CI)")
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.add_argument("--workloads", default=None, help="comma-separated subset, e.g. A,C")
    b.add_argument("--repeats", type=int, default=None,
                   help="processes per contender (default 3; 1 with --quick)")
    b.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP/torch threads of every contender (default: the CPUs)")
    b.add_argument("--in-process", action="store_true",
                   help="the old race: all contenders interleaved in this one process "
                   "(their thread pools disturb each other; labelled as such)")
    b.add_argument("--backend", choices=("numpy", "cupy", "all"), default="all")
    b.add_argument("--batch", type=int, default=None,
                   help="override the batch size (leaves out the diagnostics, step-split and "
                   "memory sections, which measure the workloads as defined)")
    b.set_defaults(func=cmd_bench)

    _add_loop_commands(sub)
    return p


def _add_loop_commands(sub) -> None:
    """``fix`` and ``runs``: the learner's loop (diagnose, fix, train again, compare)."""
    f = sub.add_parser("fix", help="apply a diagnosis fix from a run summary, as the app's "
                       "Apply button does")
    f.add_argument("project")
    f.add_argument("summary", help="the JSON written by `bplab train PROJECT --summary`")
    f.add_argument("fix_id", help="a fix id from the summary's findings, e.g. "
                   "vanishing_gradients/relu_he")
    f.add_argument("-o", "--output", required=True, help="where to write the fixed project")
    f.set_defaults(func=cmd_fix)

    r = sub.add_parser("runs", help="the project's recorded runs side by side (from `bplab "
                       "train --record` and the app): how each ended, its final figures with "
                       "the best marked, what it changed and its diagnosis")
    r.add_argument("project")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=cmd_runs)


def cmd_fix(args: argparse.Namespace) -> int:
    from bplab.fix_command import cmd_fix as run

    return run(args)


def cmd_runs(args: argparse.Namespace) -> int:
    from bplab.runs_command import cmd_runs as run

    return run(args)


def _check_export_path(path: str | None) -> None:
    if path and Path(path).suffix.lower() not in EXPORT_SUFFIXES:
        raise UsageError(
            f"{path}: cannot tell the export format from the extension; use one of "
            + ", ".join(EXPORT_SUFFIXES)
        )


# -- train --------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from bplab.io.project import load_project, project_base_dir, remove_stale_temps
    from bplab.io.run_history import record_cli_run
    from bplab.runs import RunRecorder
    from bplab.training import Trainer

    _check_export_path(args.export)
    _check_export_path(args.save_initial)
    project = load_project(args.project)
    if args.seed is not None:
        project.setdefault("training", {})["seed"] = args.seed
    base = project_base_dir(args.project)
    trainer = Trainer(
        project,
        base_dir=base,
        backend=args.backend,
        dtype=args.dtype,
        epochs=args.epochs,
        steps=args.steps,
    )
    ckpt = args.checkpoint or project.get("checkpoint")
    if ckpt:
        ckpt_path = Path(ckpt) if Path(ckpt).is_absolute() or args.checkpoint else base / ckpt
        remove_stale_temps(ckpt_path)  # a save of it killed midway left its temporary file
        if ckpt_path.exists():
            trainer.load_checkpoint(ckpt_path)
            if args.epochs is not None or args.steps is not None:
                trainer.extend(
                    args.steps if args.steps is not None else args.epochs * trainer.steps_per_epoch
                )
            if not args.quiet:
                print(f"resumed from {ckpt_path} at step {trainer.step_count}", file=sys.stderr)
    if args.save_initial:
        _export(trainer, args.save_initial, project)
    ds = trainer.dataset
    if not args.quiet:
        print(
            f"{project.get('name', Path(args.project).stem)}: {ds.name} "
            f"({len(ds.x_train)} train / {len(ds.x_val)} val), "
            f"{trainer.network.param_count():,} parameters, {trainer.backend.describe()}"
            f"{' + compiled kernels' if trainer.network.jit is not None else ''}, "
            f"{trainer.dtype.name}, {trainer.total_steps - trainer.step_count} steps",
            file=sys.stderr,
        )
    bar = _Progress(trainer, enabled=not args.quiet)
    recorder = RunRecorder()  # what --record keeps of the run
    rows: list[dict[str, Any]] = []
    last = None
    import numpy as np

    # A diverging run overflows on purpose; the divergence report says so in words.
    with np.errstate(over="ignore", invalid="ignore"):
        for report in recorder.watch(trainer.run()):
            last = report
            if report.metrics is not None and args.metrics:  # a row per epoch only if asked
                rows.append(
                    {
                        "epoch": report.epoch,
                        "step": report.step,
                        "lr": report.lr,
                        "elapsed": round(report.elapsed, 4),
                        **report.metrics,
                    }
                )
            bar.update(report)
    bar.close()
    if last is None and trainer.stopped != "done":
        print("nothing to train: the run is already complete", file=sys.stderr)
    metrics = trainer.evaluate() if trainer.dataset is not None else {}
    _print_summary(trainer, metrics, last)
    if args.metrics:
        _write_metrics(args.metrics, rows)
    _write_weights(args, trainer, project)
    if args.summary:
        from bplab.summary import write_summary

        write_summary(args.summary, trainer, project, metrics)
    if args.record:
        record_cli_run(args.project, project, trainer, recorder, epochs=args.epochs,
                       steps=args.steps)
    return 3 if trainer.stopped == "diverged" else 0


def _export(trainer, path: str, project: dict, allow_nonfinite: bool = False) -> None:
    from bplab.io.export import export_weights

    export_weights(trainer.network, path, project=project, allow_nonfinite=allow_nonfinite)


def _write_weights(args: argparse.Namespace, trainer, project: dict) -> None:
    """--export and --checkpoint at the end of a run; after a divergence neither is written
    (the user would resume from, or ship, weights that blew up) unless --allow-nonfinite."""
    targets = [p for p in (args.export, args.checkpoint) if p]
    if trainer.stopped == "diverged" and targets and not args.allow_nonfinite:
        print(f"not written: {', '.join(targets)} (the run diverged; pass --allow-nonfinite "
              "to write its weights anyway)", file=sys.stderr)
        return
    if args.export:
        _export(trainer, args.export, project, args.allow_nonfinite)
    if args.checkpoint:
        trainer.save_checkpoint(args.checkpoint, allow_nonfinite=args.allow_nonfinite)


def _write_metrics(path: str, rows: list[dict[str, Any]]) -> None:
    """The per-epoch CSV, written atomically (a full disk leaves the previous file)."""
    import io

    from bplab.io.project import atomic_write_bytes

    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def _fmt_metrics(m: dict[str, float]) -> str:
    parts = []
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_r2", "val_mae"):
        if key in m:
            v = m[key]
            parts.append(f"{key} {v:.2%}" if key.endswith("accuracy") else f"{key} {v:.4g}")
    return ", ".join(parts)


def _print_summary(trainer, metrics: dict[str, float], last) -> None:
    print(
        f"trained {trainer.step_count} steps ({trainer.epoch} epochs) in {trainer.elapsed:.2f} s"
        + (f", {trainer.step_count / trainer.elapsed:.0f} steps/s" if trainer.elapsed > 0 else "")
    )
    if trainer.stopped == "early_stop":
        print("stopped early: the validation loss stopped improving (best weights restored)")
    if trainer.divergence is not None:
        print(trainer.divergence.message)
    if metrics:
        print(_fmt_metrics(metrics))
    findings = trainer.findings
    if not findings and trainer.layer_history:
        findings = []
    print("diagnosis:" if findings else "diagnosis: no problems found in the gradients")
    for f in findings:
        print("  " + str(f).replace("\n", "\n  "))


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, trainer, enabled: bool):
        self.trainer = trainer
        self.enabled = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.enabled
        self.last_draw = 0.0
        self.metrics: dict[str, float] = {}
        self.last_plain_epoch = -1
        # The rate is this session's steps over its training time (a resumed run's earlier
        # steps and time are left out); the trainer's own rate is 0 for its first 0.25 s.
        self.start_step = trainer.step_count
        self.start_elapsed = trainer.elapsed

    def update(self, report) -> None:
        if report.metrics:
            self.metrics = report.metrics
        if self.plain:
            spe = max(1, self.trainer.total_steps // max(self.trainer.steps_per_epoch, 1) // 10)
            if report.metrics and (report.epoch % spe == 0 or report.event != "epoch"):
                print(self._line(report), file=sys.stderr)
            return
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last_draw < 0.1 and report.event == "step":
            return
        self.last_draw = now
        sys.stderr.write("\r" + self._line(report)[: _term_width() - 1].ljust(_term_width() - 1))
        sys.stderr.flush()

    def _line(self, report) -> str:
        t = self.trainer
        frac = report.step / t.total_steps if t.total_steps else 1.0
        width = 24
        filled = int(round(frac * width))
        bar = "#" * filled + "." * (width - filled)
        total_epochs = math.ceil(t.total_steps / t.steps_per_epoch)
        loss = report.train_loss if report.train_loss is not None else float("nan")
        tail = _fmt_metrics({k: v for k, v in self.metrics.items() if k.startswith("val_")})
        return (
            f"epoch {report.epoch}/{total_epochs} [{bar}] {frac:4.0%} loss {loss:.4f}"
            + (f", {tail}" if tail else "")
            + self._rate(report)
        )

    def _rate(self, report) -> str:
        seconds = report.elapsed - self.start_elapsed
        steps = report.step - self.start_step
        if seconds <= 0 or steps <= 0:
            return ""
        rate = steps / seconds
        return f", {rate:,.0f} steps/s" if rate >= 10 else f", {rate:.2g} steps/s"

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _term_width() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        return 100


# -- export, gradcheck, datasets, bench ---------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from bplab.graph import Network
    from bplab.io.export import export_weights, load_weights
    from bplab.io.project import load_project

    if args.bundle:
        return _export_bundle(args, load_weights)
    if args.weights is None:
        raise UsageError("export needs --weights W (or --bundle, which starts from the "
                         "project's initial weights)")
    _check_export_path(args.output)
    project = load_project(args.project)
    net = Network(project["network"], dtype=project.get("training", {}).get("dtype", "float32"))
    weights = _read_weights(args.weights, load_weights)
    net.load_state_dict(weights)
    export_weights(net, args.output, project=project, allow_nonfinite=args.allow_nonfinite)
    print(f"wrote {args.output}")
    return 0


def _export_bundle(args: argparse.Namespace, load_weights) -> int:
    from bplab.io.bundle import export_bundle
    from bplab.io.project import load_project, project_base_dir

    project = load_project(args.project)
    weights = _read_weights(args.weights, load_weights) if args.weights else None
    export_bundle(project, args.output, base_dir=project_base_dir(args.project), weights=weights,
                  allow_nonfinite=args.allow_nonfinite)
    print(f"wrote {args.output}: python {Path(args.output) / 'train.py'} runs the project in "
          "PyTorch (see its README.md)")
    return 0


def _read_weights(path: str, load_weights) -> dict:
    """Weights from an exported file, or from a training checkpoint (its 'weights/' entries)."""
    from bplab.io.loading import read_checkpoint, read_npz

    if path.endswith(".npz") and Path(path).is_file():
        names = read_npz(path, "weights")  # every member checked (a truncated file stops here)
        if "meta" in names and any(k.startswith("weights/") for k in names):
            data, _ = read_checkpoint(path)
            return {k[8:]: v for k, v in data.items() if k.startswith("weights/")}
    if not Path(path).exists():
        raise UsageError(f"{path}: no such weights file")
    return load_weights(path)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from bplab.datasets import load_dataset
    from bplab.gradcheck import gradcheck_network
    from bplab.graph import Network
    from bplab.io.project import load_project, project_base_dir
    from bplab.losses import make_loss
    from bplab.training import Trainer

    project = load_project(args.project)
    ds = load_dataset(project["dataset"], base_dir=project_base_dir(args.project))
    trainer = Trainer(project, dataset=ds, backend="numpy", dtype="float64")
    net: Network = trainer.network
    loss = make_loss(project["loss"])
    n = max(1, min(args.samples, len(ds.x_train)))
    x = ds.x_train[:n].astype(np.float64)
    y = trainer.targets(ds.y_train[:n])
    # Dropout must draw the same mask in every evaluation: check in evaluation mode then.
    has_dropout = any(layer.type_name == "Dropout" for layer in net.layers.values())
    report = gradcheck_network(
        net, loss, x, y, training=not has_dropout, directions=args.directions
    )
    print(
        f"{net.param_count():,} parameters, batch of {n}, float64"
        + (", evaluation mode (the network has Dropout)" if has_dropout else "")
    )
    for name, err in report.errors.items():
        print(f"  {name:<28} relative error {err:.2e}")
    print(report)
    return 0 if report.ok else 1


def cmd_datasets(args: argparse.Namespace) -> int:
    from bplab.datasets import DATASETS, dataset_names

    rows = []
    for name in dataset_names():
        info = DATASETS[name]
        rows.append(
            {
                "name": name,
                "task": info.task,
                "kind": info.kind,
                "samples": info.size,
                "input_shape": list(info.input_shape),
                "classes": info.n_classes,
                "description": info.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'name':<16}{'task':<16}{'kind':<11}{'samples':>8}  "
        f"{'input':<12}{'classes':>8}  description"
    )
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        classes = "-" if r["classes"] is None else str(r["classes"])
        print(
            f"{r['name']:<16}{r['task']:<16}{r['kind']:<11}{r['samples']:>8}  "
            f"{shape:<12}{classes:>8}  {r['description']}"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bplab.bench import run_bench

    return run_bench(args)


if __name__ == "__main__":
    raise SystemExit(main())

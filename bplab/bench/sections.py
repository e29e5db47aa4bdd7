"""The parts of a report: each workload's race, and the extra CPU measurements
(diagnostics overhead, where a step goes, peak step memory, gradient checkpointing)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bplab.bench.contenders import (
    BplabContender,
    Contender,
    EngineCore,
    NumpyCNN,
    NumpyMLP,
    TorchContender,
)
from bplab.bench.measure import interleave, peak_step_memory, ratios, summarize
from bplab.bench.workloads import DIAG_EVERY, WORKLOADS, Workload, make_dataset, mlp
from bplab.datasets.base import Dataset


@dataclass
class Options:
    quick: bool
    repeats: int
    keys: list[str]
    backends: tuple[str, ...]  # "numpy", "cupy"
    batch: int | None
    torch: Any


def _contenders(w: Workload, ds: Dataset, batch: int, opts: Options) -> list[Contender]:
    out: list[Contender] = []
    state = None
    if "numpy" in opts.backends:
        b = BplabContender(w, ds, batch, "numpy")
        state = b.initial_state()
        out.append(b)
    if "cupy" in opts.backends:
        b = BplabContender(w, ds, batch, "cupy")
        state = state or b.initial_state()
        out.append(b)
    if "numpy" in opts.backends and w.reference == "mlp":
        out.append(NumpyMLP(w, ds, batch, state))
    elif "numpy" in opts.backends and w.reference == "cnn":
        out.append(NumpyCNN(w, ds, batch, state))
    if opts.torch is not None:
        if "numpy" in opts.backends:
            out.append(TorchContender(w, ds, batch, state, "cpu"))
        if "cupy" in opts.backends and opts.torch.cuda.is_available():
            out.append(TorchContender(w, ds, batch, state, "cuda"))
    return out


def bench_workload(w: Workload, opts: Options) -> dict[str, Any]:
    batch = opts.batch or w.batch
    samples = max(w.samples, 4 * batch) if w.data != "digits" else None
    ds = make_dataset(w, samples)
    batch = min(batch, len(ds.x_train))
    steps = w.quick_steps if opts.quick else w.steps
    warmup = 2 if opts.quick else w.warmup
    contenders = _contenders(w, ds, batch, opts)
    rates = interleave(contenders, steps, warmup, opts.repeats, batch)
    result: dict[str, Any] = {
        "key": w.key, "title": w.title, "batch": batch, "samples": len(ds.x_train),
        "steps_per_repeat": steps, "warmup_steps": warmup,
        "contenders": [
            {"name": c.name, "device": c.device, "samples_per_s": summarize(rates[c.name]),
             "loss": c.loss()}
            for c in contenders
        ],
    }
    result["ratios"] = ratios(
        {c["name"]: c["samples_per_s"]["median"] for c in result["contenders"]})
    return result


def bench_diagnostics(w: Workload, opts: Options) -> dict[str, Any]:
    """Throughput with diagnostics at their default cadence against none at all."""
    batch = opts.batch or w.batch
    ds = make_dataset(w, max(w.samples, 4 * batch) if w.data != "digits" else None)
    steps = max(w.quick_steps, 10) if opts.quick else 2 * DIAG_EVERY  # whole cadences
    on = BplabContender(w, ds, batch, "numpy", name="diagnostics-100")
    off = BplabContender(w, ds, batch, "numpy", name="diagnostics-off", diagnostics_every=0)
    rates = interleave([on, off], steps, 2 if opts.quick else w.warmup, opts.repeats, batch)
    on_m, off_m = statistics.median(rates[on.name]), statistics.median(rates[off.name])
    return {"key": w.key, "batch": batch, "steps_per_repeat": steps,
            "with": summarize(rates[on.name]), "without": summarize(rates[off.name]),
            "overhead": 1.0 - on_m / off_m}


def bench_step_split(w: Workload, opts: Options) -> dict[str, Any]:
    """Microseconds per step of the engine core against the whole ``Trainer.step``."""
    batch = opts.batch or w.batch
    ds = make_dataset(w, max(w.samples, 4 * batch) if w.data != "digits" else None)
    whole = BplabContender(w, ds, batch, "numpy", name="trainer-step")
    core = EngineCore(whole.trainer)
    steps = max(w.quick_steps, 10) if opts.quick else w.steps
    rates = interleave([core, whole], steps, 2 if opts.quick else w.warmup, opts.repeats, batch)
    us = {name: batch / statistics.median(r) * 1e6 for name, r in rates.items()}
    return {"key": w.key, "batch": batch, "core_us": us[core.name],
            "step_us": us[whole.name], "bookkeeping": 1.0 - us[core.name] / us[whole.name]}


def bench_memory(w: Workload, opts: Options) -> dict[str, Any]:
    """Peak traced memory of a training step, bplab (diagnostics off and on) and numpy-ref."""
    batch = opts.batch or w.batch
    ds = make_dataset(w, max(w.samples, 4 * batch) if w.data != "digits" else None)
    b = BplabContender(w, ds, batch, "numpy", diagnostics_every=0)
    ref = NumpyMLP(w, ds, batch, b.initial_state())
    # one whole epoch first, so the epoch-end evaluation does not fall in the traced steps
    b.run(b.trainer.steps_per_epoch)
    ref.run(b.trainer.steps_per_epoch)
    out = {"key": w.key, "batch": batch,
           "bplab_step_bytes": peak_step_memory(b.trainer.step),
           "numpy_ref_step_bytes": peak_step_memory(ref.step)}
    # one sample's activations as the floor: what any engine must keep for backward
    return out


def _deep_sigmoid(width: int, depth: int) -> list:
    return mlp(2, [width] * depth, "Sigmoid", 2)


def bench_checkpointing(opts: Options) -> dict[str, Any]:
    """Workload D widened to 512 units and 20 layers: memory and time with checkpointing."""
    base = WORKLOADS["D"]
    width, depth = 512, 20
    segments = 4
    batch = opts.batch or (32 if opts.quick else 256)
    nodes = _deep_sigmoid(width, depth)
    w = Workload("D512", f"2-({width} x {depth})-2 sigmoid, SGD, batch {batch}", nodes,
                 base.optimizer, batch, 128 * batch, "xor", 20, 3)
    ds = make_dataset(w)
    plain = BplabContender(w, ds, batch, "numpy", name="no checkpointing", diagnostics_every=0)
    ckpt = BplabContender(w, ds, batch, "numpy", name=f"checkpoint_segments={segments}",
                          diagnostics_every=0, checkpoint_segments=segments)
    mem = {c.name: peak_step_memory(c.trainer.step) for c in (plain, ckpt)}
    steps = 3 if opts.quick else w.steps
    rates = interleave([plain, ckpt], steps, 2 if opts.quick else 5, opts.repeats, batch)
    ms = {k: 1000.0 * batch / statistics.median(v) for k, v in rates.items()}
    return {
        "title": w.title, "segments": segments, "batch": batch,
        "activation_bytes_per_layer": batch * width * 4,
        "peak_step_bytes": {"without": mem[plain.name], "with": mem[ckpt.name]},
        "ms_per_step": {"without": ms[plain.name], "with": ms[ckpt.name]},
        "memory_ratio": mem[ckpt.name] / mem[plain.name],
        "time_ratio": ms[ckpt.name] / ms[plain.name],
        "losses": {"without": plain.loss(), "with": ckpt.loss()},
    }

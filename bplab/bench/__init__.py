"""``bplab bench``: training throughput of the engine against PyTorch and hand-written numpy.

Each workload trains one network on one data set with three kinds of contender, all
starting from bplab's initial weights and seeing the same batches in the same order:

* ``bplab-numpy`` / ``bplab-cupy``: the :class:`bplab.training.Trainer` on a project dict,
  driven as ``bplab train`` drives it (shuffling, per-step bookkeeping, divergence checks,
  diagnostics every 100 steps, epoch ends inside the timed steps);
* ``numpy-ref``: a hand-written numpy loop doing the same math with preallocated buffers
  and in-place updates, the practical limit of numpy on this machine;
* ``torch-cpu`` / ``torch-cuda``: PyTorch eager, when torch is installed.

By default each contender runs in its own process, one process at a time, repeats in
rotated order, with equal thread counts (:mod:`~bplab.bench.processes`,
:mod:`~bplab.bench.worker`): numpy's BLAS threads and PyTorch's slow each other when they
take turns in one process. ``--in-process`` keeps the old race, contenders round-robin in
this process, labelled as such. GPU contenders synchronise their stream before and after
the timed block.

Also measured: the cost of diagnostics at their default cadence (A, C), the peak memory
of a training step (tracemalloc, numpy engines), and gradient checkpointing on a deep
sigmoid chain (peak step memory and time per step, with and without).

Layout: :mod:`~bplab.bench.workloads` (the networks and their data),
:mod:`~bplab.bench.contenders` (one module per kind of contender),
:mod:`~bplab.bench.processes` and :mod:`~bplab.bench.worker` (the per-process race),
:mod:`~bplab.bench.measure` (the in-process race, peak memory), :mod:`~bplab.bench.sections`
(what each part of the report measures), :mod:`~bplab.bench.machine` (the header),
:mod:`~bplab.bench.report` (the text table) and :mod:`~bplab.bench.runner` (the command).
"""

from bplab.bench.contenders import (
    BplabContender,
    Contender,
    EngineCore,
    NumpyCNN,
    NumpyMLP,
    TorchContender,
)
from bplab.bench.machine import blas_line, machine_info
from bplab.bench.measure import interleave, peak_step_memory, summarize
from bplab.bench.report import print_report
from bplab.bench.runner import run_bench
from bplab.bench.sections import Options
from bplab.bench.workloads import WORKLOADS, Workload, make_dataset, make_project

__all__ = [
    "WORKLOADS", "BplabContender", "Contender", "EngineCore", "NumpyCNN", "NumpyMLP",
    "Options", "TorchContender", "Workload", "blas_line", "interleave", "machine_info",
    "make_dataset", "make_project", "peak_step_memory", "print_report", "run_bench",
    "summarize",
]

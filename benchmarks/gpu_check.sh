#!/usr/bin/env bash
# The GPU verification run of issue 6, as run on a lent H100 (CuPy, PyTorch CUDA, onnxruntime;
# no package registry): CuPy parity and optimizer tests (the fused kernels), mixed-precision
# convergence, and `bplab bench` on workloads C (batch 128 and 4096) and E (batch 256).
# Logs go to $OUT (default ./out). Each part has its own time limit so one slow part cannot
# starve the rest.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/nvidia-smi.txt"
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
BPLAB_TEST_BACKEND=cupy timeout 100 python3 -m pytest -q -p no:cacheprovider --maxfail=10 \
    tests/engine/test_backend_parity.py tests/engine/test_optimizers.py tests/engine/test_amp.py \
    tests/engine/test_training.py 2>&1 | tail -25 | tee "$OUT/tests.log"
timeout 45 python3 -m bplab.cli bench --workloads C --batch 4096 --repeats 3 2>&1 | tee "$OUT/bench_C4096.txt"
timeout 40 python3 -m bplab.cli bench --workloads E --batch 256 --repeats 3 --backend cupy 2>&1 | tee "$OUT/bench_E256.txt"
timeout 30 python3 -m bplab.cli bench --workloads C --batch 128 --repeats 3 --backend cupy 2>&1 | tee "$OUT/bench_C128.txt"
timeout 60 python3 benchmarks/amp_convergence.py --backend cupy 2>&1 | tee "$OUT/amp.txt"

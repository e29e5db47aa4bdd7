#!/usr/bin/env bash
# The GPU verification run of issue 6, as run on a lent H100 (CuPy, PyTorch CUDA, onnxruntime;
# no package registry): the whole engine test suite with the CuPy backend, `bplab bench` on
# workloads C (batch 4096) and E (batch 256) with torch-cuda in the same run, and the step
# profile (benchmarks/gpu_profile.py). Mixed-precision convergence: benchmarks/amp_convergence.py.
# Logs go to $OUT (default ./out). Each part has its own time limit so one slow part cannot
# starve the rest.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/nvidia-smi.txt"
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
BPLAB_TEST_BACKEND=cupy timeout ${TEST_LIMIT:-200} python3 -m pytest -q -p no:cacheprovider \
    --maxfail=15 -rf tests/engine 2>&1 | tail -40 | tee "$OUT/tests.log"
timeout 50 python3 -m bplab.cli bench --workloads C --batch 4096 --repeats 3 2>&1 | tee "$OUT/bench_C4096.txt"
timeout 40 python3 -m bplab.cli bench --workloads E --batch 256 --repeats 3 --backend cupy 2>&1 | tee "$OUT/bench_E256.txt"
timeout 80 python3 benchmarks/gpu_profile.py --steps 100 2>&1 | tee "$OUT/profile.txt"

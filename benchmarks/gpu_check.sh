#!/usr/bin/env bash
# The GPU verification run of issue 6, as run on a lent H100 (CuPy, PyTorch CUDA, onnxruntime;
# no package registry). Part "tests": the whole engine test suite with the CuPy backend.
# Part "bench": `bplab bench` on workload C at batch 4096 (every contender, for bplab-cupy
# against bplab-numpy on the same machine), E at batch 256 and C at batch 128 (CuPy and
# torch-cuda), the step profile (benchmarks/gpu_profile.py), mixed-precision convergence
# (benchmarks/amp_convergence.py) and the MNIST CNN example trained with backend "auto".
# Usage: OUT=dir bash benchmarks/gpu_check.sh [tests] [bench]   (both by default)
# Each part has its own time limit so one slow part cannot starve the rest.
set -uo pipefail
OUT=${OUT:-out}
PARTS=${*:-tests bench}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/nvidia-smi.txt"
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
if [[ " $PARTS " == *" tests "* ]]; then
  BPLAB_TEST_BACKEND=cupy timeout ${TEST_LIMIT:-200} python3 -m pytest -q -p no:cacheprovider \
      --maxfail=15 -rf tests/engine 2>&1 | tail -40 | tee "$OUT/tests.log"
fi
if [[ " $PARTS " == *" bench "* ]]; then
  timeout 150 python3 -m bplab.cli bench --workloads C --batch 4096 --repeats 3 2>&1 | tee "$OUT/bench_C4096.txt"
  timeout 40 python3 -m bplab.cli bench --workloads E --batch 256 --repeats 5 --backend cupy 2>&1 | tee "$OUT/bench_E256.txt"
  timeout 40 python3 -m bplab.cli bench --workloads C --batch 128 --repeats 5 --backend cupy 2>&1 | tee "$OUT/bench_C128.txt"
  timeout 80 python3 benchmarks/gpu_profile.py --steps 100 > "$OUT/profile.txt" 2>&1
  timeout 70 python3 benchmarks/amp_convergence.py --backend cupy 2>&1 | tee "$OUT/amp.txt"
  timeout 60 python3 -m bplab.cli train resources/examples/mnist_cnn.bplab.json --backend auto 2>&1 | tail -8 | tee "$OUT/mnist_cnn_auto.txt"
fi

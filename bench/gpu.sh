#!/usr/bin/env bash
# GPU checks for a CUDA machine: the GPU-marked tests, training throughput on CUDA with mixed
# precision against a bare loop, and a paper-sized run (AlexNet at 224 px) for a fixed number of
# steps, printing images/s and peak memory. Results go to docs/benchmarks.md (sections train-cuda).
#   bash bench/gpu.sh            (from the repo root, with the venv's python on PATH or in .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
echo "== GPU-marked tests"
$PY -m pytest -q -m gpu tests || true
echo "== throughput: alexnet_mini 64 px, AMP"
$PY -m bench.bench_train --device cuda --amp --model alexnet_mini --size 64 --batch 256 --steps 100 --no-write
echo "== paper-sized: alexnet 224 px, batch 128, AMP (fascore loop vs bare loop)"
$PY -m bench.bench_train --device cuda --amp --model alexnet --size 224 --batch 128 --steps 100

#!/usr/bin/env bash
# GPU checks for a CUDA machine, about 3 minutes on one data-centre card:
#  1. the GPU-marked tests (the trainer's AMP path, a run on CUDA, the GPU data path);
#  2. the paper-sized path (AlexNet 224 px, AMP, channels_last, uint8 cache and augmentation on
#     the GPU): fascore's loop against a bare PyTorch loop, peak memory, Grad-CAM ms/image,
#     written with the card's name into docs/benchmarks.md (section train-gpu).
#   bash bench/gpu.sh               (from anywhere; uses .venv/bin/python when present)
#   PY=/path/to/python bash bench/gpu.sh --steps 30
# Extra arguments go to bench.bench_gpu. Nothing is downloaded: ImageNet init is used when
# torchvision's alexnet file is already in torch's cache ($TORCH_HOME/hub/checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
$PY - <<'EOF'
import torch
assert torch.cuda.is_available(), "no CUDA device: bench/gpu.sh needs one"
p = torch.cuda.get_device_properties(0)
print(f"card: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} visible")
EOF
echo "== GPU-marked tests"
status=0
$PY -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py || status=$?
echo "== paper-sized GPU path"
$PY -m bench.bench_gpu "$@"
exit $status

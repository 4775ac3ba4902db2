#!/usr/bin/env bash
# The GPU checks of issue 23 in one go (under 5 minutes on one GPU): CUDA surface = CPU surface,
# mpirun -n 2 on one GPU, bf16 autocast's error, Hessian products on CUDA = CPU, a 1B-parameter
# transformer's 5x5 surface within 1.3x the model's memory, seconds per point of ResNet-56 on
# 50,000 images. Prints a Markdown table; exit 1 when a check fails, 0 (doing nothing) without CUDA.
#
#   bash benchmarks/device_check.sh            # on a machine with a GPU
#   OUT=dir bash benchmarks/device_check.sh    # also writes dir/device_check.json and .md
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "no CUDA device: nothing run (benchmarks/device_check.sh checks landscape on a GPU)"
    exit 0
fi
json_args=()
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    json_args=(--json "$OUT/device_check.json")
fi
timeout 290 "$PY" benchmarks/device_check.py --device cuda "${json_args[@]}" | tee "${OUT:-/tmp}/device_check.md"
exit "${PIPESTATUS[0]}"

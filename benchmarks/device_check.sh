#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run (under 10 minutes on one H100/H200):
#   1. pretraining, configs/pretrain_125m.yaml, bf16 + torch.compile, ~60 steps: tokens/s and MFU;
#   2. the MiniLM encoder of the BERT-style classifier members and of semantic dedup: docs/s, GPU vs CPU;
#   3. MinHash signatures, torch on the GPU vs numpy on one CPU core, 100k real documents (bit-identical).
# Fails at once, with a message, where torch sees no GPU. Each figure is printed with the device name.
#   PYTHON=.venv/bin/python DATA_DIR=path/to/realweb benchmarks/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${DATA_DIR:-}" ]; then
  for d in shared/data/realweb ../shared/data/realweb; do [ -d "$d" ] && DATA_DIR=$d && break; done
fi
[ -d "${DATA_DIR:-}" ] || { echo "device_check: set DATA_DIR to the realweb data folder" >&2; exit 2; }
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "device_check: no CUDA GPU visible to torch; nothing measured" >&2
  exit 3
fi
DEVICE=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
echo "device: $DEVICE"
echo "== 1/3 pretraining 125M, bf16, compile, 60 steps [$DEVICE]"
timeout 300 "$PY" benchmarks/bench_pretrain.py --config configs/pretrain_125m.yaml --batch 16 --steps 60 \
  --warmup 8 --compile --only winnow
echo "== 2/3 MiniLM encoder docs/s, GPU vs CPU [$DEVICE]"
timeout 150 "$PY" benchmarks/bench_embed.py --device cuda --docs 20000 --cpu-docs 500 --data-dir "$DATA_DIR"
echo "== 3/3 MinHash torch-on-GPU vs numpy on one core, 100k documents [$DEVICE]"
timeout 200 "$PY" benchmarks/bench_minhash_backends.py --device cuda --docs 100000 --repeat 2 --data-dir "$DATA_DIR"
echo "device_check: done [$DEVICE]"

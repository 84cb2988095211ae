#!/usr/bin/env bash
# Create .venv and install medcode CPU-only. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch first, pinned to the CPU build, so nothing later pulls a multi-GB CUDA wheel.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install --quiet --upgrade pip
  # TORCH_SPEC lets a machine whose PyPI mirror serves CUDA builds point at a CPU wheel instead.
  .venv/bin/pip install --quiet ${TORCH_SPEC:-"torch==2.13.0"}
fi
# MEDCODE_EXTRAS: e.g. dev,llm (llama-cpp-python compiles from source, ~5 min) or dev,llm,qwen.
.venv/bin/pip install --quiet -e ".[${MEDCODE_EXTRAS:-dev}]"

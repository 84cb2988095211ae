#!/usr/bin/env bash
# The main job on a fresh machine: install, build the FY2025 index, start the API, show a lookup.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export MEDCODE_SOURCES=${MEDCODE_SOURCES:-../shared/sources/icd10cm/2025}
YEAR=${MEDCODE_DEFAULT_YEAR:-2025}
PORT=${MEDCODE_PORT:-8000}
.venv/bin/medcode ingest build --year "$YEAR" --if-current
.venv/bin/medcode index status
.venv/bin/medcode serve --port "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
echo "--- GET /v1/lookup?q=type 2 diabetes with hyperglycemia"
curl -fsS "http://127.0.0.1:$PORT/v1/lookup?q=type%202%20diabetes%20with%20hyperglycemia&limit=3" \
  | .venv/bin/python -m json.tool
echo "--- GET /v1/codes/E11.65 (title, hierarchy, notes)"
curl -fsS "http://127.0.0.1:$PORT/v1/codes/E11.65" | .venv/bin/python -c \
  'import json,sys; d=json.load(sys.stdin); print(d["code"], d["title"], "billable:", d["billable"]); [print(" ", n["kind"], "@", n["from_code"], ":", n["text"]) for n in d["notes"]]'
echo "API running on http://127.0.0.1:$PORT (docs at /docs). Ctrl-C to stop."
if [ -t 0 ]; then wait $SERVER; fi

#!/usr/bin/env bash
# Score the starter voices with ../shared/eval: corpus -> the quick (or all) pairs -> convert -> evaluate.
#
#   scripts/eval_starter.sh [quick|all]          # default quick (24 pairs, all 4 targets)
#
# Needs the evaluation venv (bash ../shared/eval/setup_venv.sh VENV, as root; ~1.7 GB): set SVCEVAL_VENV to it.
# Environment knobs: SVCEVAL_VENV (/work/svceval-venv)  SVCEVAL_DATA (build/svc_corpus: the evaluation corpus,
#   made here when missing)  EV_VOICE (voices/starter)  EV_F0 (fcpe)  EV_CLUSTER (0: cluster ratio)
#   EV_OUT (build/eval)  EV_PYTHON (.venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-quick}"
EVAL=../shared/eval
VENV="${SVCEVAL_VENV:-/work/svceval-venv}"
DATA="${SVCEVAL_DATA:-build/svc_corpus}"
OUT="${EV_OUT:-build/eval}"
PY="${EV_PYTHON:-.venv/bin/python}"
FILTER=()
if [ "$MODE" = quick ]; then FILTER=(--quick); fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "no evaluation venv at $VENV; make it with: bash $EVAL/setup_venv.sh $VENV (or set SVCEVAL_VENV)" >&2
    exit 2
fi
"$VENV/bin/python" "$EVAL/make_corpus.py" --out "$DATA"
"$VENV/bin/python" "$EVAL/make_inputs.py" --data "$DATA" --dest "$OUT/inputs-$MODE" "${FILTER[@]}"
"$PY" -m svc_core.starter eval-convert --inputs "$OUT/inputs-$MODE" --voice "${EV_VOICE:-voices/starter}" \
    --out "$OUT/starter-$MODE" --f0 "${EV_F0:-fcpe}" --cluster-ratio "${EV_CLUSTER:-0}"
"$VENV/bin/python" "$EVAL/evaluate.py" --data "$DATA" --converted "$OUT/starter-$MODE" "${FILTER[@]}" \
    --label starter --out "$OUT/starter-$MODE.json" | tee "$OUT/starter-$MODE.md"

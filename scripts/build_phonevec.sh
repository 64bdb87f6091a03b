#!/usr/bin/env bash
# Build the phonevec256 content encoder from nothing: corpus -> CTC training -> probe -> pretrain/phonevec256.pt.
#
#   scripts/build_phonevec.sh [WORKDIR]          # default WORKDIR: build/phonevec
#
# Environment knobs (defaults are the planned full run; every step resumes/skips what exists):
#   PV_SENTENCES (1500)  PV_WORLD_FRACTION (0.5)  PV_JOBS (2)  PV_EPOCHS (6)  PV_MAX_MINUTES (0 = no limit)
#   PV_THREADS (2)  PV_PYTHON (.venv/bin/python)
# Needs the Debian packages espeak-ng, flite, festival, festvox-kdlpc16k.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-build/phonevec}"
PY="${PV_PYTHON:-.venv/bin/python}"
mkdir -p "$WORK" pretrain
"$PY" -m svc_core.phonevec corpus --out "$WORK/corpus" --sentences "${PV_SENTENCES:-1500}" \
    --world-fraction "${PV_WORLD_FRACTION:-0.5}" --jobs "${PV_JOBS:-2}"
"$PY" -m svc_core.phonevec train --corpus "$WORK/corpus" --out "$WORK/run" --epochs "${PV_EPOCHS:-6}" \
    --max-minutes "${PV_MAX_MINUTES:-0}" --threads "${PV_THREADS:-2}" --half
"$PY" -m svc_core.phonevec probe --corpus "$WORK/corpus" --encoder "$WORK/run/phonevec256.pt" \
    --sentences 40 --layers 2,3,4,5,6 --json "$WORK/probe.json" --threads "${PV_THREADS:-2}"
cp "$WORK/run/phonevec256.pt" pretrain/phonevec256.pt
echo "pretrain/phonevec256.pt ($(du -h pretrain/phonevec256.pt | cut -f1)); probe numbers in $WORK/probe.json"

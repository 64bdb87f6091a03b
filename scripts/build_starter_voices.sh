#!/usr/bin/env bash
# Build the starter voices from nothing: TTS speech + singing corpus -> phonevec256 encoder (if missing) ->
# preprocess -> WORLD targets + perturbed features -> train the 4-speaker WORLD voice on the speaker-free
# posteriorgram (phoneppg42) -> voices/starter/ (release W, config, encoder, manifest.json with sha256 of every file).
# With ST_SOVITS=1 it also trains the so-vits-svc 4.1 starter model (slow on CPU) into voices/starter-sovits/.
#
#   scripts/build_starter_voices.sh [WORKDIR]        # default WORKDIR: build/starter
#
# Every step resumes or skips what exists, so the script can be re-run after an interruption.
# Environment knobs (defaults = the planned full run):
#   ST_SENTENCES (200)  ST_SONGS (1: sung versions per sentence and voice)  ST_JOBS (2)  ST_THREADS (2)
#   ST_WORLD_STEPS (5000: WORLD voice training steps)  ST_WORLD_ENCODER (phoneppg42; phonevec256 = the hidden layer,
#   which also builds and ships a k-means index)  ST_SOVITS (0: 1 = also the so-vits model)
#   ST_STEPS (3000: so-vits training steps)  ST_D_DIV (2: discriminator width divisor, `train --d-width-divisor`)
#   ST_CLUSTERS (1000: k-means centres per speaker)  ST_KMEANS_FRAMES (30000 frames per speaker)  ST_F0 (auto: rmvpe when
#   pretrain/rmvpe.pt exists, else fcpe)  ST_OUT (voices/starter)  ST_PYTHON (.venv/bin/python)
# Needs the Debian packages flite, festival, festvox-kdlpc16k (and espeak-ng when phonevec256 must be built).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-build/starter}"
PY="${ST_PYTHON:-.venv/bin/python}"
JOBS="${ST_JOBS:-2}"
THREADS="${ST_THREADS:-2}"
D_DIV="${ST_D_DIV:-2}"
STEPS="${ST_STEPS:-3000}"
CLUSTERS="${ST_CLUSTERS:-1000}"
OUT="${ST_OUT:-voices/starter}"
ENCODER=pretrain/phonevec256.pt
WENC="${ST_WORLD_ENCODER:-phoneppg42}"
F0="${ST_F0:-auto}"
if [ "$F0" = auto ]; then
    if [ -f pretrain/rmvpe.pt ]; then F0=rmvpe; else F0=fcpe; fi
fi
mkdir -p "$WORK"
T_ALL=$SECONDS

step() {  # step NAME COMMAND...: run and print its wall time
    local name="$1" t0=$SECONDS
    shift
    echo "== $name"
    "$@"
    echo "== $name: $((SECONDS - t0)) s" | tee -a "$WORK/timings.txt"
}

step "corpus (${ST_SENTENCES:-200} sentences x 4 voices, ${ST_SONGS:-1} song(s) each)" \
    "$PY" -m svc_core.starter corpus --out "$WORK/corpus" --sentences "${ST_SENTENCES:-200}" \
    --songs-per-sentence "${ST_SONGS:-1}" --jobs "$JOBS"

if [ ! -f "$ENCODER" ]; then
    step "phonevec256 encoder (scripts/build_phonevec.sh)" scripts/build_phonevec.sh build/phonevec
else
    echo "== phonevec256 encoder: $ENCODER exists, kept"
fi

step "preprocess (encoder phonevec256, f0 $F0)" \
    "$PY" -m svc_core preprocess --in "$WORK/corpus/raw" --out "$WORK/dataset" --encoder phonevec256 \
    --encoder-path "$ENCODER" --f0 "$F0" --jobs "$JOBS"
step "starter model config" "$PY" -m svc_core.starter config --data "$WORK/dataset"

step "WORLD targets + perturbed content features ($WENC)" \
    "$PY" -m svc_core prepare-world --data "$WORK/dataset" --encoder "$WENC" --encoder-path "$ENCODER" --jobs "$JOBS"
WSTEPS="${ST_WORLD_STEPS:-5000}"
RESUME=()
if compgen -G "$WORK/world/W_*.pth" > /dev/null; then RESUME=(--resume); fi
step "train the WORLD voice ($WSTEPS steps)" "$PY" -m svc_core train-world --data "$WORK/dataset" \
    --out "$WORK/world" --encoder "$WENC" --steps "$WSTEPS" --threads "$THREADS" "${RESUME[@]}"

if [ "${ST_SOVITS:-0}" = 1 ]; then
    RESUME=()
    if compgen -G "$WORK/run/G_*.pth" > /dev/null; then RESUME=(--resume); fi
    step "train the so-vits model ($STEPS steps)" "$PY" -m svc_core train --data "$WORK/dataset" --out "$WORK/run" \
        --steps "$STEPS" --threads "$THREADS" --d-width-divisor "$D_DIV" "${RESUME[@]}"
fi

INDEX_ARGS=()
INDEX="$WORK/kmeans_${CLUSTERS}.pt"
if [ "$WENC" != phonevec256 ]; then
    echo "== k-means index: skipped ($WENC carries no speaker, so there is nothing for retrieval to pull towards)"
elif [ ! -f "$INDEX" ] || [ "$WORK/dataset/manifest.json" -nt "$INDEX" ]; then
    step "k-means index ($CLUSTERS centres per speaker)" \
        "$PY" -m svc_core train-index --data "$WORK/dataset" --kind kmeans --clusters "$CLUSTERS" \
        --max-frames "${ST_KMEANS_FRAMES:-30000}" -o "$INDEX"
else
    echo "== k-means index: $INDEX is newer than the dataset, kept"
fi
if [ "$WENC" = phonevec256 ]; then INDEX_ARGS=(--index "$INDEX"); fi

step "package into $OUT" "$PY" -m svc_core.starter package --run "$WORK/world" --encoder "$ENCODER" \
    "${INDEX_ARGS[@]}" --corpus "$WORK/corpus" --out "$OUT"
if [ "${ST_SOVITS:-0}" = 1 ]; then
    step "package into $OUT-sovits" "$PY" -m svc_core.starter package --run "$WORK/run" \
        --corpus "$WORK/corpus" --out "$OUT-sovits"
fi
echo "starter voices in $OUT after $((SECONDS - T_ALL)) s (step times in $WORK/timings.txt)"

#!/usr/bin/env bash
# One candidate of the evidence thresholds (docs/RESULTS.md, "Saying only what the photo shows"),
# measured on the two sets it may be fitted on: the first 250 imagenet-sample photos in file-name
# order (wild_score.py) and the Flickr8k dev split (CIDEr-D, grounded as `caption` does). The
# held-out half and the test split are not touched.
#   WORK=work/flickr8k FEATURES=work/features.safetensors bash recipes/evidence_fit.sh NAME [caption flags...]
#   e.g. ... NAME --evidence-detector-threshold 0.2 --evidence-unfamiliar-weight 8 \
#              --evidence-class-threshold 0.3 --evidence-familiar-threshold 0.65
# Prints one line: the flags, wild_score's JSON summary and dev BLEU-4 / METEOR / CIDEr-D
# (greedy, beam 3); the captions and the evaluation stay in $OUT (default work/evidence-fit).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:?work folder of the model (captioner prepare)} FEATURES=${FEATURES:?its features file (--grid --classes)}
MODEL=${MODEL:-models/default}
SAMPLE=${SAMPLE:-../shared/data/imagenet-sample}
OUT=${OUT:-work/evidence-fit}
name=${1:?a name for this candidate}; shift
cargo build --release -q
bin=./target/release/captioner
mkdir -p "$OUT"
find "$SAMPLE" -maxdepth 1 -name '*.JPEG' | sort | head -250 > "$OUT/fit.list"
"$bin" caption --model "$MODEL" --json --list "$OUT/fit.list" "$@" > "$OUT/$name-fit.jsonl" 2>/dev/null
wild=$(python3 ../shared/tools/wild_score.py "$OUT/$name-fit.jsonl" --json)
"$bin" evaluate --model "$MODEL" --work "$WORK" --features "$FEATURES" --split dev --beam 3 --ground \
  --quiet "$@" > "$OUT/$name-dev.txt"
dev=$(grep -E "^(BLEU-4  |METEOR|CIDEr-D)" "$OUT/$name-dev.txt" | tr -s ' ' | paste -sd ';')
echo "$name $* | $wild | dev $dev"

#!/usr/bin/env bash
# Fits grounding's need rule (docs/RESULTS.md, "Naming what it sees") on the two sets the issue
# allows, from per-photo tables: every Flickr8k dev photo and every imagenet-sample photo captioned
# without grounding and with it forced (need threshold 0: every photo whose class is confident
# enough), then for each novelty weight c the largest threshold T that still names 80% of the
# imagenet-sample photos, and the dev CIDEr-D change that rule gives. The test split is not touched.
#   MODEL=models/default WORK=work/full/work bash recipes/ground_fit.sh [out]
#   PYTHON: a python with pycocoevalcap 1.2 (per-image CIDEr-D), default the CI's venv
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/default} WORK=${WORK:?work folder the model was trained from}
IMAGES=${IMAGES:-../shared/data/flickr8k/Images}
SAMPLE=${SAMPLE:-../shared/data/imagenet-sample}
PYTHON=${PYTHON:-$HOME/.cache/captioner/ci-venv/bin/python}
OUT=${1:-work/ground-fit}
cargo build --release -q
bin=./target/release/captioner
mkdir -p "$OUT"
python3 -c "import json,sys; print('\n'.join(sys.argv[2] + '/' + i + '.jpg' for i in json.load(open(sys.argv[1]))['dev']))" \
  "$WORK/splits.json" "$IMAGES" > "$OUT/dev.list"
for set in dev sample; do
  if [ $set = dev ]; then photos=(--list "$OUT/dev.list"); else photos=("$SAMPLE"); fi
  $bin caption --model "$MODEL" --json --ground off "${photos[@]}" > "$OUT/$set-off.jsonl"
  $bin caption --model "$MODEL" --json --ground-need-threshold 0 "${photos[@]}" > "$OUT/$set-forced.jsonl"
done
"$PYTHON" recipes/ground_fit.py "$WORK/descriptions.txt" "$OUT" ../shared/tools/object_named.py

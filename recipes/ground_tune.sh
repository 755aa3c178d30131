#!/usr/bin/env bash
# Tunes grounding's thresholds (docs/RESULTS.md, "Naming what it sees") on the two sets the issue
# allows: imagenet-sample (objects named, ../shared/tools/object_named.py) and the Flickr8k dev
# split (beam-3 CIDEr-D with and without grounding). The test split is not touched.
#   MODEL=work/mB WORK=work/ptb FEATURES=work/features.safetensors bash recipes/ground_tune.sh [out]
#   CLASS="0.3 0.5" WORD="0.5 0.7" NEED="3.0" NAME=0.5 ...   the grid (defaults below)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:?model folder} WORK=${WORK:?work folder} FEATURES=${FEATURES:?features file}
SAMPLE=${SAMPLE:-../shared/data/imagenet-sample}
OUT=${1:-work/ground-tune}
CLASS=${CLASS:-0.3 0.5}
WORD=${WORD:-0.3 0.5}
NEED=${NEED:-2.3 2.4 2.5}
NAME=${NAME:-0.3}
cargo build --release -q
bin=./target/release/captioner
mkdir -p "$OUT"
cider() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['beam3']['cider']*100, 2))" "$1/scores.json"; }
$bin evaluate --model "$MODEL" --work "$WORK" --features "$FEATURES" --split dev --quiet --force --out "$OUT/dev-off" > /dev/null
echo "off: dev CIDEr-D $(cider "$OUT/dev-off"), imagenet-sample $($bin caption --model "$MODEL" --json --ground off "$SAMPLE" | tee "$OUT/sample-off.jsonl" | python3 ../shared/tools/object_named.py /dev/stdin)"
for c in $CLASS; do
  for w in $WORD; do
    for s in $NEED; do
      flags=(--ground-class-threshold "$c" --ground-word-threshold "$w" --ground-need-threshold "$s"
             --ground-name-threshold "$NAME")
      name="c$c-w$w-n$s"
      $bin evaluate --model "$MODEL" --work "$WORK" --features "$FEATURES" --split dev --ground "${flags[@]}" \
        --quiet --force --out "$OUT/dev-$name" > /dev/null
      named=$($bin caption --model "$MODEL" --json "${flags[@]}" "$SAMPLE" | tee "$OUT/sample-$name.jsonl" \
        | python3 ../shared/tools/object_named.py /dev/stdin)
      echo "class $c word $w need $s: dev CIDEr-D $(cider "$OUT/dev-$name"), imagenet-sample $named"
    done
  done
done

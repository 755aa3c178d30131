#!/usr/bin/env bash
# The full Flickr8k run behind docs/RESULTS.md and models/default: prepare -> features (all 8,091
# images) -> train -> evaluate the test split once (greedy and beam 3), timing each stage.
#   bash bench/full_run.sh [outdir]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/flickr8k}
OUT=${1:-work/full}
mkdir -p "$OUT"
cargo build --release -q
bin=./target/release/captioner
export CAPTIONER_METEOR_JAR="${CAPTIONER_METEOR_JAR:-$(bash scripts/fetch-meteor.sh)}"
stage() { local name=$1; shift; local s; s=$(date +%s.%N); "$@"; echo "$name $(echo "$(date +%s.%N) - $s" | bc)" >> "$OUT/times.txt"; }
: > "$OUT/times.txt"
stage prepare  $bin prepare --data "$DATA" --out "$OUT/work" --min-count 5
rm -f "$OUT/features.safetensors"
stage features $bin features --images "$DATA/Images" --out "$OUT/features.safetensors" --quiet
stage train    $bin train --work "$OUT/work" --features "$OUT/features.safetensors" --out "$OUT/model" \
                 --epochs 8 --patience 3 --lr-decay 0.8 ${TRAIN_FLAGS:-} --quiet
stage evaluate $bin evaluate --model "$OUT/model" --work "$OUT/work" --features "$OUT/features.safetensors" \
                 --split test --beam 3 --out "$OUT/eval" --quiet | tee "$OUT/test_scores.txt"
cat "$OUT/times.txt"

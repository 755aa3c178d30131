#!/usr/bin/env bash
# Feature extraction speed, side by side with the PyTorch baseline, interleaved (ours, PyTorch, ours, ...).
# Both read the same JPEG files end to end with the same thread count; prints each run and the medians.
#   BENCH_PYTHON=/path/to/venv/bin/python bash bench/features.sh
# BENCH_PYTHON: a venv with bench/requirements.txt installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-python3}
IMAGES=${IMAGES:-../shared/data/flickr8k/Images}
LIMIT=${LIMIT:-512}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
cargo build --release -q
scratch=$(mktemp -d)
ls "$IMAGES" | grep -i '\.jpg$' | sort | awk -v n="$LIMIT" 'NR <= n' > "$scratch/ids.txt"
ours=() theirs=()
for round in $(seq "$ROUNDS"); do
  rm -f "$scratch/f.safetensors"
  line=$(./target/release/captioner features --images "$IMAGES" --split-file "$scratch/ids.txt" \
         --out "$scratch/f.safetensors" --threads "$THREADS" --quiet)
  rate=$(echo "$line" | sed -E 's/.* ([0-9.]+) images\/s computed/\1/')
  ours+=("$rate")
  line=$("$PY" bench/pytorch_features.py --images "$IMAGES" --limit "$LIMIT" --batch 32 --threads "$THREADS" 2>/dev/null | tail -n 1)
  rate=$(echo "$line" | sed -E 's/images_per_s=([0-9.]+).*/\1/')
  theirs+=("$rate")
  echo "round $round: captioner ${ours[-1]} images/s, pytorch ${theirs[-1]} images/s"
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
ours = [float(x) for x in sys.argv[1].split()]; theirs = [float(x) for x in sys.argv[2].split()]
o, t = statistics.median(ours), statistics.median(theirs)
# EfficientNet-Lite0 at 224x224: 383.9 M multiply-adds per image (counted layer by layer).
print(f"median: captioner {o:.1f} images/s, pytorch {t:.1f} images/s, ratio {o / t:.2f}x, "
      f"captioner {o * 0.7678:.1f} GFLOP/s")
PY
rm -rf "$scratch"

#!/usr/bin/env bash
# Decoder training speed, side by side with the PyTorch baseline, interleaved (ours, PyTorch, ...).
# Both: Flickr8k training captions, 7,579/7,580-id vocabulary, random 1280-d features, batch 64,
# 5 warm-up steps then the median of 60 steps, same thread count. Prints each run and the medians.
#   BENCH_PYTHON=/path/to/venv/bin/python bash bench/train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-python3}
DATA=${DATA:-../shared/data/flickr8k}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
cargo bench --bench train_step --no-run -q 2>/dev/null
ours=() theirs=() our_rss=() their_rss=()
for round in $(seq "$ROUNDS"); do
  line=$(/usr/bin/time -f "rss_kb=%M" cargo bench -q --bench train_step -- --data "$DATA" --threads "$THREADS" 2>&1 | grep -E "captions_per_s|rss_kb" | tr '\n' ' ')
  ours+=("$(echo "$line" | sed -E 's/.*captions_per_s=([0-9.]+).*/\1/')")
  our_rss+=("$(echo "$line" | sed -E 's/.*peak_rss_mb=([0-9]+).*/\1/')")
  line=$(/usr/bin/time -f "rss_kb=%M" "$PY" ../shared/bench/pytorch_merge_train.py --data "$DATA" --feat-dim 1280 --batch 64 --steps 60 --threads "$THREADS" 2>&1 | grep -E "captions_per_s|rss_kb" | tr '\n' ' ')
  theirs+=("$(echo "$line" | sed -E 's/.*captions_per_s=([0-9.]+).*/\1/')")
  their_rss+=("$(( $(echo "$line" | sed -E 's/.*rss_kb=([0-9]+).*/\1/') / 1024 ))")
  echo "round $round: captioner ${ours[-1]} captions/s (${our_rss[-1]} MB), pytorch ${theirs[-1]} captions/s (${their_rss[-1]} MB)"
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
o = statistics.median(float(x) for x in sys.argv[1].split())
t = statistics.median(float(x) for x in sys.argv[2].split())
print(f"median: captioner {o:.1f} captions/s, pytorch {t:.1f} captions/s, ratio {o / t:.2f}x")
PY

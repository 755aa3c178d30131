#!/usr/bin/env bash
# Decoder training speed, side by side with the PyTorch baseline, interleaved (ours, PyTorch, ...).
# Both read the captions and vocabulary of one work folder made by `captioner prepare` with its
# defaults (PTB tokens, min count 5: 2,543 ids on Flickr8k); random 1280-d features, batch 64,
# 5 warm-up steps then the median of 60 steps, same thread count. Also measures the machine's FP32
# matrix-product rate through PyTorch (2048^3), the ceiling both trainers work under.
# DECODER=attention compares the attention decoder with its twin (bench/pytorch_attention.py: embedding
# and hidden 512, attention 256, random 7x7x1280 grids) instead of the merge decoder.
#   BENCH_PYTHON=~/venv-bench/bin/python bash bench/train.sh     (venv: bench/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-python3}
DATA=${DATA:-../shared/data/flickr8k}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
DECODER=${DECODER:-merge}
case "$DECODER" in
  merge) twin=(bench/pytorch_merge_train.py) ;;
  attention) twin=(bench/pytorch_attention.py) ;;
  *) echo "DECODER=$DECODER: merge or attention" >&2; exit 2 ;;
esac
cargo build --release -q
cargo bench --bench train_step --no-run -q 2>/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/captioner prepare --data "$DATA" --out "$work" > /dev/null
ours=() theirs=() gemm=()
for round in $(seq "$ROUNDS"); do
  line=$(/usr/bin/time -f "rss_kb=%M" cargo bench -q --bench train_step -- --work "$work" --threads "$THREADS" --decoder "$DECODER" 2>&1 | grep -E "captions_per_s|rss_kb" | tr '\n' ' ')
  ours+=("$(echo "$line" | sed -E 's/.*captions_per_s=([0-9.]+).*/\1/')")
  echo "round $round captioner: $line"
  line=$(/usr/bin/time -f "rss_kb=%M" "$PY" "${twin[@]}" --work "$work" --batch 64 --steps 60 --threads "$THREADS" 2>&1 | grep -E "captions_per_s|rss_kb" | tr '\n' ' ')
  theirs+=("$(echo "$line" | sed -E 's/.*captions_per_s=([0-9.]+).*/\1/')")
  echo "round $round pytorch:   $line"
  line=$("$PY" bench/pytorch_merge_train.py --gemm --threads "$THREADS")
  gemm+=("$(echo "$line" | sed -E 's/.*gemm_gflops=([0-9.]+).*/\1/')")
  echo "round $round gemm:      $line"
done
python3 - "${ours[*]}" "${theirs[*]}" "${gemm[*]}" <<'PY'
import statistics, sys
o, t, g = (statistics.median(float(x) for x in arg.split()) for arg in sys.argv[1:4])
print(f"median: captioner {o:.1f} captions/s, pytorch {t:.1f} captions/s, ratio {o / t:.2f}x; FP32 GEMM {g:.1f} GFLOP/s")
PY

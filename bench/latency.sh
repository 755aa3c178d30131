#!/usr/bin/env bash
# One photo to a caption, captioner vs PyTorch (bench/pytorch_caption.py), interleaved, greedy and beam 3.
# cold = wall time of a process that captions one photo (start, load, caption, exit);
# warm = (wall time for N+1 copies of the photo - cold) / N, i.e. each further photo in a running process
# (N = COPIES, 40 by default: large enough that the noise of a process start is spread thin).
#   BENCH_PYTHON=/path/to/venv/bin/python bash bench/latency.sh [photo.jpg]
# CAPTIONER_BIN=path measures another build of captioner (for before/after comparisons); MODEL=dir
# measures another model folder on both sides (an attention model, for instance).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-python3}
PHOTO=${1:-../shared/data/flickr8k/Images/1000268201_693b08cb0e.jpg}
ROUNDS=${ROUNDS:-5}
COPIES=${COPIES:-40}
BIN=${CAPTIONER_BIN:-./target/release/captioner}
MODEL=${MODEL:-models/default}
cargo build --release -q
now() { date +%s.%N; }
wall() { local s; s=$(now); "$@" > /dev/null; echo "$(now) - $s" | bc; }
many=(); for _ in $(seq $((COPIES + 1))); do many+=("$PHOTO"); done
for beam in 1 3; do
  rows=()
  for round in $(seq "$ROUNDS"); do
    ours1=$(wall "$BIN" caption --model "$MODEL" --beam "$beam" "$PHOTO")
    theirs1=$(wall "$PY" bench/pytorch_caption.py --model "$MODEL" --beam "$beam" "$PHOTO")
    oursN=$(wall "$BIN" caption --model "$MODEL" --beam "$beam" "${many[@]}")
    theirsN=$(wall "$PY" bench/pytorch_caption.py --model "$MODEL" --beam "$beam" "${many[@]}")
    rows+=("$ours1 $theirs1 $oursN $theirsN")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
warm = lambda a, b: statistics.median((r[b] - r[a]) / $COPIES for r in rows)
oc, tc, ow, tw = med(0), med(1), warm(0, 2), warm(1, 3)
print(f'beam $beam: cold captioner {oc*1000:.0f} ms, pytorch {tc*1000:.0f} ms (ratio {oc/tc:.2f}); '
      f'warm captioner {ow*1000:.1f} ms, pytorch {tw*1000:.1f} ms (ratio {ow/tw:.2f})')
"
done

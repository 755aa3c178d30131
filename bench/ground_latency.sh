#!/usr/bin/env bash
# Caption latency with grounding (the default) against --ground off, on the same photos, interleaved.
# cold = wall time of a process that captions one photo; warm = (wall time for N+1 copies - cold) / N,
# each further photo in a running process (as bench/latency.sh).
#   bash bench/ground_latency.sh [photo ...]
# The default photos: a robin from imagenet-sample, whose plain caption names no bird (so the
# constrained search runs), and a Flickr8k test photo whose plain caption already holds the word.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
COPIES=${COPIES:-20}
MODEL=${MODEL:-models/default}
BEAM=${BEAM:-3}
# Extra flags for the grounded runs (e.g. GROUND_FLAGS="--ground-beam 3").
read -r -a ground_flags <<< "${GROUND_FLAGS:-}"
BIN=./target/release/captioner
photos=("$@")
[ ${#photos[@]} -gt 0 ] || photos=(../shared/data/imagenet-sample/n01558993_robin.JPEG
                                  ../shared/data/flickr8k/Images/1000268201_693b08cb0e.jpg)
cargo build --release -q
now() { date +%s.%N; }
wall() { local s; s=$(now); "$@" > /dev/null; echo "$(now) - $s" | bc; }
for photo in "${photos[@]}"; do
  many=(); for _ in $(seq $((COPIES + 1))); do many+=("$photo"); done
  rows=()
  for round in $(seq "$ROUNDS"); do
    on1=$(wall $BIN caption --model "$MODEL" --beam "$BEAM" "${ground_flags[@]}" "$photo")
    off1=$(wall $BIN caption --model "$MODEL" --beam "$BEAM" --ground off "$photo")
    onN=$(wall $BIN caption --model "$MODEL" --beam "$BEAM" "${ground_flags[@]}" "${many[@]}")
    offN=$(wall $BIN caption --model "$MODEL" --beam "$BEAM" --ground off "${many[@]}")
    rows+=("$on1 $off1 $onN $offN")
  done
  echo "$(basename "$photo"): grounded \"$($BIN caption --model "$MODEL" --beam "$BEAM" "$photo" | cut -f2)\", off \"$($BIN caption --model "$MODEL" --beam "$BEAM" --ground off "$photo" | cut -f2)\""
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
warm = lambda a, b: statistics.median((r[b] - r[a]) / $COPIES for r in rows)
on, off, won, woff = med(0), med(1), warm(0, 2), warm(1, 3)
print(f'  cold: grounded {on*1000:.0f} ms, off {off*1000:.0f} ms (ratio {on/off:.2f}); '
      f'warm: grounded {won*1000:.1f} ms, off {woff*1000:.1f} ms (ratio {won/woff:.2f})')
"
done

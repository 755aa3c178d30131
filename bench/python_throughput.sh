#!/usr/bin/env bash
# The Python package's caption_many against the CLI on the same photos, interleaved (CLI --json,
# Python, CLI --json, ...): both give `caption --json`'s fields for every photo, 2 threads.
#   PY=<a python with the package installed (pip install .)> N=1000 ROUNDS=2 bash bench/python_throughput.sh
# Photos: the first N Flickr8k test photos of ../shared/data. Prints photos/s per round and the
# medians' ratio; then import + first caption, warm, in a fresh process (median of 5).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
PY=${PY:?a python with the captioner package}
N=${N:-1000}
ROUNDS=${ROUNDS:-2}
DATA=${DATA:-../shared/data/flickr8k}
bin=./target/release/captioner
list=$(mktemp)
head -"$N" "$DATA/Flickr_8k.testImages.txt" | sed "s#^#$DATA/Images/#" > "$list"
cli=() py=()
for round in $(seq "$ROUNDS"); do
  start=$(date +%s.%N)
  "$bin" caption --json --threads 2 --list "$list" > /dev/null
  cli+=("$(echo "$N / ($(date +%s.%N) - $start)" | bc -l)")
  start=$(date +%s.%N)
  RAYON_NUM_THREADS=2 "$PY" -c "
import captioner, sys
paths = open(sys.argv[1]).read().split()
captioner.Captioner().caption_many(paths)" "$list"
  py+=("$(echo "$N / ($(date +%s.%N) - $start)" | bc -l)")
  printf 'round %d: CLI %.1f photos/s, Python %.1f photos/s\n' "$round" "${cli[-1]}" "${py[-1]}"
done
mc=$(median "${cli[@]}") mp=$(median "${py[@]}")
printf 'median: CLI %.1f, Python %.1f photos/s, ratio %.2f\n' "$mc" "$mp" "$(echo "$mp / $mc" | bc -l)"
first=()
for _ in 1 2 3 4 5; do
  first+=("$("$PY" -c "
import time; t = time.perf_counter()
import captioner
captioner.Captioner().caption('$(head -1 "$list")')
print(time.perf_counter() - t)")")
done
printf 'import + first caption (warm): median %.3f s\n' "$(median "${first[@]}")"
rm -f "$list"

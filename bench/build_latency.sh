#!/usr/bin/env bash
# Caption latency of this build against another build (BEFORE, a captioner binary), default
# settings, the same photos, interleaved: each round runs before then now. cold = wall time of a
# process that captions one photo; warm = (wall time for N+1 copies - cold) / N, as
# bench/latency.sh. Prints each photo's medians and the ratio now / before.
#   BEFORE=path/to/old/captioner bash bench/build_latency.sh [photo ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:?a captioner binary of the build to compare with}
ROUNDS=${ROUNDS:-5}
COPIES=${COPIES:-20}
photos=("$@")
[ ${#photos[@]} -gt 0 ] || photos=(../shared/data/flickr8k/Images/1000268201_693b08cb0e.jpg
                                  ../shared/data/imagenet-sample/n01558993_robin.JPEG
                                  ../shared/data/imagenet-sample/n02099601_golden_retriever.JPEG)
cargo build --release -q
NOW=./target/release/captioner
now() { date +%s.%N; }
wall() { local s; s=$(now); "$@" > /dev/null 2>&1; echo "$(now) - $s" | bc; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for photo in "${photos[@]}"; do
  many=(); for _ in $(seq $((COPIES + 1))); do many+=("$photo"); done
  rows=()
  for _ in $(seq "$ROUNDS"); do
    row=""
    for bin in "$BEFORE" "$NOW"; do
      one=$(wall "$bin" caption "$photo")
      all=$(wall "$bin" caption "${many[@]}")
      row+="$one $(echo "($all - $one) / $COPIES" | bc -l) "
    done
    rows+=("$row")
  done
  col() { printf '%s\n' "${rows[@]}" | awk -v c="$1" '{print $c}' | median; }
  cold_b=$(col 1); warm_b=$(col 2); cold_n=$(col 3); warm_n=$(col 4)
  printf '%s: warm %.1f -> %.1f ms (%.2fx), cold %.0f -> %.0f ms (%.2fx)\n' "$(basename "$photo")" \
    "$(echo "$warm_b * 1000" | bc -l)" "$(echo "$warm_n * 1000" | bc -l)" "$(echo "$warm_n / $warm_b" | bc -l)" \
    "$(echo "$cold_b * 1000" | bc -l)" "$(echo "$cold_n * 1000" | bc -l)" "$(echo "$cold_n / $cold_b" | bc -l)"
done

#!/usr/bin/env bash
# `caption --out` throughput (the default: grounded, beam 3, 2 threads) of this build with --batch
# (photos side by side) and --batch 1 (one at a time), and of another build (BEFORE, a captioner
# binary), interleaved rounds on the same photos; medians and ratios.
#   BEFORE=<binary> PHOTOS=<list file> ROUNDS=3 bash bench/batch_throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
BEFORE=${BEFORE:?a captioner binary to compare with}
PHOTOS=${PHOTOS:?a file listing the photos}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-32}
bin=./target/release/captioner
n=$(wc -l < "$PHOTOS")
out=$(mktemp -d)
declare -a batched one before
for round in $(seq "$ROUNDS"); do
  rm -f "$out"/*.jsonl
  batched+=("$(rate "$n" "$bin" caption --threads 2 --batch "$BATCH" --list "$PHOTOS" --out "$out/a.jsonl")")
  one+=("$(rate "$n" "$bin" caption --threads 2 --batch 1 --list "$PHOTOS" --out "$out/b.jsonl")")
  before+=("$(rate "$n" "$BEFORE" caption --threads 2 --list "$PHOTOS" --out "$out/c.jsonl")")
  printf 'round %d: --batch %d %.1f, --batch 1 %.1f, before %.1f photos/s\n' "$round" "$BATCH" "${batched[-1]}" "${one[-1]}" "${before[-1]}"
  cmp <(jq -c '[.key, .caption]' "$out/a.jsonl") <(jq -c '[.key, .caption]' "$out/b.jsonl")
done
b=$(median "${batched[@]}") o=$(median "${one[@]}") p=$(median "${before[@]}")
printf 'median photos/s: --batch %d %.1f, --batch 1 %.1f, before %.1f; --batch %d / before %.2fx, --batch 1 / before %.2fx\n' \
  "$BATCH" "$b" "$o" "$p" "$BATCH" "$(echo "$b / $p" | bc -l)" "$(echo "$o / $p" | bc -l)"
rm -rf "$out"

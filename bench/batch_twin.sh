#!/usr/bin/env bash
# Batch-job throughput against the batched PyTorch twin: `captioner caption --out` (--batch 32, 2
# threads; grounded as by default, and with --ground off, the twin's work) against
# `bench/pytorch_caption.py --batch 32 --workers 2 --threads 2` (a DataLoader's workers decode, the
# encoder on batches, one batched beam search per batch), beam 3, interleaved rounds, medians.
#   PY=~/venv-bench/bin/python PHOTOS=<list file> ROUNDS=3 bash bench/batch_twin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
PY=${PY:-python3}
PHOTOS=${PHOTOS:?a file listing the photos}
ROUNDS=${ROUNDS:-3}
bin=./target/release/captioner
n=$(wc -l < "$PHOTOS")
out=$(mktemp -d)
declare -a grounded plain twin
for round in $(seq "$ROUNDS"); do
  rm -f "$out"/*.jsonl
  grounded+=("$(rate "$n" "$bin" caption --threads 2 --batch 32 --list "$PHOTOS" --out "$out/a.jsonl")")
  plain+=("$(rate "$n" "$bin" caption --threads 2 --batch 32 --ground off --list "$PHOTOS" --out "$out/b.jsonl")")
  twin+=("$(rate "$n" "$PY" bench/pytorch_caption.py --batch 32 --workers 2 --threads 2 --list "$PHOTOS")")
  printf 'round %d: captioner %.1f (grounded), %.1f (--ground off); PyTorch twin %.1f photos/s\n' \
    "$round" "${grounded[-1]}" "${plain[-1]}" "${twin[-1]}"
done
g=$(median "${grounded[@]}") p=$(median "${plain[@]}") t=$(median "${twin[@]}")
printf 'median photos/s: captioner %.1f grounded (%.2fx the twin), %.1f --ground off (%.2fx); twin %.1f\n' \
  "$g" "$(echo "$g / $t" | bc -l)" "$p" "$(echo "$p / $t" | bc -l)" "$t"
rm -rf "$out"

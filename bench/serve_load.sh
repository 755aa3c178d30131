#!/usr/bin/env bash
# Load test of `captioner serve` beside the PyTorch twin behind FastAPI (bench/pytorch_server.py), same
# model, same beam (3), same threads (2), grounding off on our side (the twin has none); runs
# interleaved (ours, PyTorch, ours, ...) at each concurrency, closed-loop clients
# (tools/load.rs), medians over ROUNDS. Then a soak of ours alone: SOAK requests at concurrency 8,
# every 10th malformed (bytes that are no photo, or a 25 MB upload), memory sampled every 1,000.
#   BENCH_PYTHON=/path/to/venv/bin/python bash bench/serve_load.sh [outdir]
#   ROUNDS=3 SECONDS_EACH=30 CONCURRENCY="1 8 32" SOAK=10000 PHOTOS=50 ...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${BENCH_PYTHON:-python3}
OUT=${1:-work/serve-load}
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-30}
CONCURRENCY=${CONCURRENCY:-1 8 32}
SOAK=${SOAK:-10000}
MODEL=${MODEL:-models/default}
mkdir -p "$OUT"
cargo build --release -q
cargo build --release -q --example load
load=./target/release/examples/load
# The first PHOTOS test images of Flickr8k's official split.
mapfile -t photos < <(head -n "${PHOTOS:-50}" ../shared/data/flickr8k/Flickr_8k.testImages.txt | sed 's|^|../shared/data/flickr8k/Images/|')

./target/release/captioner serve --model "$MODEL" --addr 127.0.0.1:0 --threads 2 --beam 3 --ground off \
  > "$OUT/ours.out" 2> "$OUT/ours.err" &
ours_pid=$!
"$PY" bench/pytorch_server.py --model "$MODEL" --port 8091 --threads 2 --beam 3 > "$OUT/pytorch.out" 2>&1 &
torch_pid=$!
trap 'kill $ours_pid $torch_pid 2>/dev/null || true' EXIT
until grep -q listening "$OUT/ours.out" && curl -sf "$(grep -o 'http://[0-9.:]*' "$OUT/ours.out")/healthz" > /dev/null; do sleep 0.5; done
ours=$(grep -o 'http://[0-9.:]*' "$OUT/ours.out")/v1/caption
until curl -sf http://127.0.0.1:8091/healthz > /dev/null; do sleep 0.5; done
theirs=http://127.0.0.1:8091/v1/caption

: > "$OUT/runs.jsonl"
for round in $(seq "$ROUNDS"); do
  for c in $CONCURRENCY; do
    for side in ours pytorch; do
      url=$ours; [ "$side" = pytorch ] && url=$theirs
      result=$($load --url "$url" --concurrency "$c" --seconds "$SECONDS_EACH" "${photos[@]}")
      echo "{\"side\":\"$side\",\"round\":$round,\"result\":$result}" | tee -a "$OUT/runs.jsonl"
    done
  done
done
"$load" --url "$ours" --concurrency 8 --requests "$SOAK" --bad-every 10 --watch-pid "$ours_pid" "${photos[@]}" \
  | tee "$OUT/soak.json"
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
runs = [json.loads(l) for l in open(f'{out}/runs.jsonl')]
med = lambda side, c, key: statistics.median(r['result'][key] for r in runs if r['side'] == side and r['result']['concurrency'] == c)
levels = sorted({r['result']['concurrency'] for r in runs})
print('| concurrency | captioner captions/s | PyTorch captions/s | ratio | captioner p50 / p99 ms | PyTorch p50 / p99 ms |')
print('|---|---|---|---|---|---|')
for c in levels:
    o, t = med('ours', c, 'good_per_s'), med('pytorch', c, 'good_per_s')
    print(f"| {c} | {o:.1f} | {t:.1f} | {o / t:.2f}x | {med('ours', c, 'p50_ms'):.0f} / {med('ours', c, 'p99_ms'):.0f} "
          f"| {med('pytorch', c, 'p50_ms'):.0f} / {med('pytorch', c, 'p99_ms'):.0f} |")
if 1 in levels and 8 in levels:
    print(f"captioner at concurrency 8 / at 1: {med('ours', 8, 'good_per_s') / med('ours', 1, 'good_per_s'):.2f}x; "
          f"p99 at 8 / p50 at 1: {med('ours', 8, 'p99_ms') / med('ours', 1, 'p50_ms'):.2f}x")
soak = json.load(open(f'{out}/soak.json'))
print(f"soak: {soak['requests']} requests, statuses {soak['statuses']}, RSS every 1,000 (MB) {soak['rss_mb_every_1000']}, peak {soak['peak_rss_mb']} MB")
PY

#!/usr/bin/env bash
# HTTP fuzzing of `captioner serve` (src/fuzz/http.rs) for docs/FUZZING.md: the shipped model on
# loopback, WARM mutated requests to bring memory to its working size, then INPUTS more; prints the
# fuzzer's JSON line and the server's resident memory after each part, and whether it still captions.
#   INPUTS=1000000 WARM=20000 SEED=11 bash bench/fuzz_http.sh [outdir]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work/fuzz-http}
INPUTS=${INPUTS:-1000000}
WARM=${WARM:-20000}
SEED=${SEED:-11}
mkdir -p "$OUT"
cargo build --release -q
cargo build --release -q --example fuzz
./target/release/captioner serve --addr 127.0.0.1:0 --threads 2 > "$OUT/serve.out" 2> "$OUT/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until grep -q "listening on" "$OUT/serve.out"; do sleep 0.2; done
addr=$(sed -n 's|^listening on http://||p' "$OUT/serve.out")
until curl -sf "http://$addr/healthz" > /dev/null; do sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "resident KiB at start: $(rss)"
./target/release/examples/fuzz --target http --addr "$addr" --inputs "$WARM" --seed "$((SEED + 1))" \
  --crashes "$OUT/crashes"
echo "resident KiB after the warm-up: $(rss)"
./target/release/examples/fuzz --target http --addr "$addr" --inputs "$INPUTS" --seed "$SEED" \
  --crashes "$OUT/crashes"
echo "resident KiB after the run: $(rss)"
curl -sf -H 'Content-Type: image/png' --data-binary @fixtures/formats/gray16.png "http://$addr/v1/caption" \
  | head -c 200
echo

#!/usr/bin/env bash
# `captioner serve` of this build against another build (BEFORE, a captioner binary): closed-loop
# clients (tools/load.rs) at concurrency C on the first 50 Flickr8k test photos, the two servers
# side by side and measured in interleaved rounds; captions/s and p99, medians.
#   BEFORE=<binary> [ROUNDS=3] [SECONDS_EACH=20] [C=8] [SERVE_FLAGS="--ground off"] bash bench/serve_builds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:?a captioner binary to compare with}
ROUNDS=${ROUNDS:-3} SECONDS_EACH=${SECONDS_EACH:-20} C=${C:-8}
read -r -a flags <<< "${SERVE_FLAGS:-}"
cargo build --release -q --bin captioner --example load
load=./target/release/examples/load
mapfile -t photos < <(head -n 50 ../shared/data/flickr8k/Flickr_8k.testImages.txt | sed 's|^|../shared/data/flickr8k/Images/|')
out=$(mktemp -d)
start() { # binary name -> url
  "$1" serve --addr 127.0.0.1:0 --threads 2 "${flags[@]}" > "$out/$2.out" 2> "$out/$2.err" &
  echo $! > "$out/$2.pid"
  until grep -q listening "$out/$2.out" 2>/dev/null; do sleep 0.5; done
  grep -o 'http://[0-9.:]*' "$out/$2.out"
}
now=$(start ./target/release/captioner now) before=$(start "$BEFORE" before)
trap 'kill $(cat "$out"/*.pid) 2>/dev/null || true; rm -rf "$out"' EXIT
for url in "$now" "$before"; do until curl -sf "$url/healthz" > /dev/null; do sleep 0.5; done; done
for round in $(seq "$ROUNDS"); do
  for side in now before; do
    url=$now; [ "$side" = before ] && url=$before
    result=$($load --url "$url/v1/caption" --concurrency "$C" --seconds "$SECONDS_EACH" "${photos[@]}")
    echo "{\"side\":\"$side\",\"round\":$round,\"result\":$result}" | tee -a "$out/runs.jsonl"
  done
done
python3 - "$out/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for side in ("now", "before"):
    rs = [r["result"] for r in runs if r["side"] == side]
    med[side] = (statistics.median(r["good_per_s"] for r in rs), statistics.median(r["p99_ms"] for r in rs))
    print(f"{side}: {med[side][0]:.1f} captions/s, p99 {med[side][1]:.1f} ms (medians of {len(rs)})")
print(f"now / before: {med['now'][0] / med['before'][0]:.2f}x captions/s, p99 {med['now'][1] / med['before'][1]:.2f}x")
PY

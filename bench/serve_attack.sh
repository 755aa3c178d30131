#!/usr/bin/env bash
# `captioner serve` under attack, default settings, the shipped model, 2 compute threads:
# 1. SLOW slow clients of each kind (a request line never finished; upload headers then two bytes
#    of body, then nothing: bench/slow_clients.py) while 4 closed-loop clients caption photos for
#    SECONDS_EACH s, between two runs of the same clients without them; prints each run's JSON
#    (tools/load.rs) and when the server closed each slow connection.
# 2. 8 uploads at once of an 818 KB PNG declaring 16,384 x 16,384, the server's resident memory
#    sampled every 50 ms: each answer's status and time, and the peak.
#   SLOW=500 SECONDS_EACH=30 bash bench/serve_attack.sh [outdir]   (needs ../shared/data for photos)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work/serve-attack}
SLOW=${SLOW:-500}
SECONDS_EACH=${SECONDS_EACH:-30}
mkdir -p "$OUT"
ulimit -n 8192 2>/dev/null || true
cargo build --release -q
cargo build --release -q --example load
mapfile -t photos < <(head -n 50 ../shared/data/flickr8k/Flickr_8k.testImages.txt | sed 's|^|../shared/data/flickr8k/Images/|')
./target/release/captioner serve --addr 127.0.0.1:0 --threads 2 > "$OUT/serve.out" 2> "$OUT/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until grep -q "listening on" "$OUT/serve.out"; do sleep 0.2; done
addr=$(sed -n 's|^listening on http://||p' "$OUT/serve.out")
until curl -sf "http://$addr/healthz" > /dev/null; do sleep 0.2; done
load() {
  ./target/release/examples/load --url "http://$addr/v1/caption" --concurrency 4 --seconds "$SECONDS_EACH" \
    "${photos[@]}"
}
echo "quiet:    $(load)"
python3 bench/slow_clients.py "$addr" --headers "$SLOW" --bodies "$SLOW" --wait 120 > "$OUT/slow.json" \
  2> "$OUT/slow.err" &
slow=$!
until grep -q "open" "$OUT/slow.err"; do sleep 0.2; done
echo "attacked: $(load)"
wait $slow
echo "slow connections: $(cat "$OUT/slow.json")"
echo "quiet:    $(load)"

python3 - "$OUT/huge.png" <<'PY'
import struct, sys, zlib
w = h = 16384
row = b"\0" + b"\x80" * (3 * w)
z = zlib.compressobj(9)
data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
peak=0
uploads=()
for i in $(seq 8); do
  curl -s -o "$OUT/huge-$i.json" -w "upload $i: %{http_code} in %{time_total} s\n" \
    -H 'Content-Type: image/png' --data-binary @"$OUT/huge.png" "http://$addr/v1/caption" &
  uploads+=($!)
done
running() { for u in "${uploads[@]}"; do kill -0 "$u" 2>/dev/null && return 0; done; return 1; }
while running; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status"); [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 0.05
done
wait "${uploads[@]}"
echo "16,384 x 16,384 PNG ($(stat -c %s "$OUT/huge.png") bytes) x 8: peak resident $((peak / 1024)) MiB; first answer: $(head -c 160 "$OUT/huge-1.json")"

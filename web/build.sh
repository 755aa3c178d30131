#!/usr/bin/env bash
# Builds the browser's page into web/dist (or the folder given): the library compiled to
# WebAssembly with 128-bit SIMD, its JavaScript glue (wasm-bindgen), serve's page with app.js, the
# service worker, the shipped model's files and the encoder's weights in f16. Serve the folder with
# any static host; nothing else is fetched.
#   bash web/build.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-web/dist}"
rustup target add wasm32-unknown-unknown >/dev/null
# wasm-bindgen's command-line tool must be the version the crate is locked to (from crates.io).
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
  cargo install -q wasm-bindgen-cli --version "$version"
fi
# Whole-program optimisation (fat LTO, one codegen unit) for the WebAssembly only; symbols kept, so
# that wasm-bindgen can read the module's features section.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
  CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  cargo build -q --release --target wasm32-unknown-unknown -p captioner-web
target="${CARGO_TARGET_DIR:-target}"
tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/model"
wasm-bindgen --target web --no-typescript --out-dir "$tmp/pkg" \
  "$target/wasm32-unknown-unknown/release/captioner_web.wasm"
cp models/default/{config.json,vocab.json,weights.safetensors,familiar.safetensors,concepts.safetensors} "$tmp/model/"
cargo run -q --release --example encoder_f16 -- "$tmp/encoder.safetensors"
sed 's#</body>#<script type="module" src="app.js"></script>\n</body>#' src/serve/page.html > "$tmp/index.html"
# A new build is a new cache: the hash of everything the page fetches.
hash=$(cat "$tmp"/pkg/* "$tmp"/model/* "$tmp/encoder.safetensors" "$tmp/index.html" web/app.js web/sw.js |
  sha256sum | cut -c1-16)
sed "s/__VERSION__/$hash/" web/app.js > "$tmp/app.js"
sed "s/__VERSION__/$hash/" web/sw.js > "$tmp/sw.js"
rm -rf "$out"
mv "$tmp" "$out"
echo "web page in $out ($(du -sh "$out" | cut -f1)): serve it with any static host, e.g. python3 -m http.server -d $out"

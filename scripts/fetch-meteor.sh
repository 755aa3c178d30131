#!/usr/bin/env bash
# Prints the path of coco-caption's meteor-1.5.jar, taken from the PyPI package pycocoevalcap 1.2
# (with its data/ folder) into the captioner cache on first use. METEOR also needs Java.
#   export CAPTIONER_METEOR_JAR=$(bash scripts/fetch-meteor.sh)
set -euo pipefail
cache="${CAPTIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/captioner}/pycocoevalcap"
jar="$cache/pycocoevalcap/meteor/meteor-1.5.jar"
if [ ! -f "$jar" ] || [ ! -f "$cache/pycocoevalcap/meteor/data/paraphrase-en.gz" ]; then
  mkdir -p "$cache"
  download=$(mktemp -d)
  python3 -m pip download --no-deps --quiet pycocoevalcap==1.2 -d "$download" >&2
  python3 - "$download" "$cache" <<'PY'
import glob, os, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(os.path.join(sys.argv[1], "*.whl"))[0])
for name in wheel.namelist():
    if name.startswith("pycocoevalcap/meteor/"):
        wheel.extract(name, sys.argv[2])
PY
  rm -rf "$download"
fi
echo "$jar"

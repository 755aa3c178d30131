#!/usr/bin/env bash
# Prints the paths of a few classic sample photos (a cat, a coffee cup, an astronaut, a rocket, a
# motorcycle), taken from the scikit-image wheel on PyPI into the captioner cache on first use.
# Nothing here comes from Flickr8k.  Usage: captioner caption $(bash tools/sample-photos.sh)
set -euo pipefail
cache="${CAPTIONER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/captioner}/sample-photos"
photos=(chelsea.png coffee.png astronaut.png rocket.jpg motorcycle_left.png)
missing=0
for photo in "${photos[@]}"; do [ -f "$cache/$photo" ] || missing=1; done
if [ "$missing" = 1 ]; then
  mkdir -p "$cache"
  download=$(mktemp -d)
  python3 -m pip download --no-deps --quiet scikit-image==0.26.0 -d "$download" >&2
  python3 - "$download" "$cache" "${photos[@]}" <<'PY'
import glob, os, sys, zipfile
download, cache, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
wheel = zipfile.ZipFile(glob.glob(os.path.join(download, "*.whl"))[0])
for photo in photos:
    with open(os.path.join(cache, photo + ".tmp"), "wb") as out:
        out.write(wheel.read("skimage/data/" + photo))
    os.replace(os.path.join(cache, photo + ".tmp"), os.path.join(cache, photo))
PY
  rm -rf "$download"
fi
for photo in "${photos[@]}"; do echo "$cache/$photo"; done

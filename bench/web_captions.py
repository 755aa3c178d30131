#!/usr/bin/env python3
"""What the browser changes: the page's captions of many photos (headless Chromium, web/dist)
against the CLI's with the same f16 encoder weights (`caption --weights web/dist/encoder.safetensors`)
and with the f32 weights it fetches (`caption`). Prints the counts of captions that differ and
each difference.

  bash web/build.sh && python3 bench/web_captions.py PHOTO_LIST"""
import json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from web_latency import CLI, DIST, Browser, host  # noqa: E402


def cli(photos, *flags):
    out = subprocess.run([CLI, "caption", *flags, *photos], check=True, capture_output=True, text=True).stdout
    return [line.split("\t")[1] for line in out.splitlines()]


def main():
    photos = [os.path.abspath(line.strip()) for line in open(sys.argv[1]) if line.strip()]
    f32 = cli(photos)
    f16 = cli(photos, "--weights", os.path.join(DIST, "encoder.safetensors"))
    server = host(DIST)
    browser = Browser()
    page = []
    try:
        browser.call("POST", browser.session + "/url", {"url": f"http://127.0.0.1:{server.server_address[1]}/"})
        for photo in photos:
            browser.pick(photo)
            page.append(browser.wait_caption()["caption"])
    finally:
        browser.close()
        server.shutdown()
    differ = lambda a, b: [i for i in range(len(photos)) if a[i] != b[i]]
    result = {"photos": len(photos), "page_vs_cli_f16": len(differ(page, f16)),
              "page_vs_cli_f32": len(differ(page, f32)), "cli_f16_vs_cli_f32": len(differ(f16, f32))}
    for i in sorted(set(differ(page, f16)) | set(differ(page, f32))):
        print(f"{os.path.basename(photos[i])}\n  page: {page[i]}\n  f16:  {f16[i]}\n  f32:  {f32[i]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

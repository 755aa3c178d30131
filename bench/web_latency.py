#!/usr/bin/env python3
"""The browser's page against the native CLI on this machine: the page's size as a static host
would send it (gzip -9 and, when the brotli module is there, brotli 11), the first caption on a
cold page (a fresh browser profile: navigation start to the caption shown, the photo picked at
once), and the warm caption latency in headless Chromium (the wasm call, median of ROUNDS per photo)
against the CLI's single-threaded warm latency (`caption --threads 1 --batch 1`: (wall time of
N+1 copies - 1 copy) / N), interleaved round by round.

  bash web/build.sh && python3 bench/web_latency.py [photo ...]

Needs chromium and chromedriver (apt) and target/release/captioner; no Python packages."""
import functools, gzip, http.server, json, os, shutil, socket, statistics, subprocess, sys, tempfile
import threading, time, urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DIST = os.path.join(ROOT, "web", "dist")
CLI = os.path.join(ROOT, "target", "release", "captioner")
ROUNDS = int(os.environ.get("ROUNDS", "5"))
COPIES = int(os.environ.get("COPIES", "10"))
PHOTOS = sys.argv[1:] or [os.path.join(ROOT, "..", "shared", "data", p) for p in (
    "flickr8k/Images/1000268201_693b08cb0e.jpg", "imagenet-sample/n01558993_robin.JPEG",
    "imagenet-sample/n02099601_golden_retriever.JPEG")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def host(directory):
    handler = functools.partial(Quiet, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Browser:
    """A headless Chromium over WebDriver (JSON over HTTP) with a profile of its own."""

    def __init__(self):
        port = free_port()
        self.profile = tempfile.mkdtemp(prefix="captioner-web-bench-")
        self.driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                    f"--user-data-dir={self.profile}"]}}}}
        self.session = base + "/session/" + self.call("POST", base + "/session", caps)["sessionId"]

    def call(self, method, url, body=None):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(request, timeout=300))["value"]

    def script(self, source):
        return self.call("POST", self.session + "/execute/sync", {"script": source, "args": []})

    def pick(self, photo):
        # An emptied picker: picking the file it holds again would change nothing.
        self.script("document.getElementById('caption').textContent = ''; "
                    "document.getElementById('file').value = '';")
        element = self.call("POST", self.session + "/element", {"using": "css selector", "value": "#file"})
        element = next(iter(element.values()))
        self.call("POST", f"{self.session}/element/{element}/value", {"text": os.path.abspath(photo)})

    def wait_caption(self):
        while True:
            shown = self.script("const c = document.getElementById('caption').textContent; "
                                "const s = document.getElementById('status'); "
                                "return s.className === 'error' ? {error: s.textContent} : "
                                "c ? {caption: c, at: performance.now(), ms: window.captionerLastMs} : null;")
            if shown:
                if "error" in shown:
                    raise SystemExit(f"the page says: {shown['error']}")
                return shown
            time.sleep(0.02)

    def close(self):
        try:
            urllib.request.urlopen(urllib.request.Request(self.session, method="DELETE"))
        finally:
            self.driver.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


def sizes():
    total = {"raw": 0, "gzip": 0, "brotli": 0}
    try:
        import brotli
    except ImportError:
        brotli = None
    for folder, _, files in os.walk(DIST):
        for name in files:
            data = open(os.path.join(folder, name), "rb").read()
            total["raw"] += len(data)
            total["gzip"] += min(len(data), len(gzip.compress(data, 9)))
            if brotli:
                total["brotli"] += min(len(data), len(brotli.compress(data, quality=11)))
    return {k: round(v / 1e6, 2) for k, v in total.items() if v}


def native_warm(photo):
    def wall(n):
        start = time.perf_counter()
        subprocess.run([CLI, "caption", "--threads", "1", "--batch", "1"] + [photo] * n, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start
    one = wall(1)
    return (wall(COPIES + 1) - one) / COPIES * 1000


def main():
    server = host(DIST)
    page = f"http://127.0.0.1:{server.server_address[1]}/"
    result = {"size_mb": sizes(), "photos": {}}
    browser = Browser()
    try:
        browser.call("POST", browser.session + "/url", {"url": page})
        browser.pick(PHOTOS[0])
        first = browser.wait_caption()
        result["cold_first_caption_s"] = round(first["at"] / 1000, 2)
        result["cold_load_s"] = browser.script("return window.captionerLoadSeconds;")
        rows = {p: {"page": [], "native": []} for p in PHOTOS}
        for _ in range(ROUNDS):
            for photo in PHOTOS:
                browser.pick(photo)
                rows[photo]["page"].append(browser.wait_caption()["ms"])
                rows[photo]["native"].append(native_warm(photo))
        for photo, row in rows.items():
            page_ms, native_ms = statistics.median(row["page"]), statistics.median(row["native"])
            result["photos"][os.path.basename(photo)] = {
                "page_ms": round(page_ms, 1), "native_1_thread_ms": round(native_ms, 1),
                "ratio": round(page_ms / native_ms, 2)}
    finally:
        browser.close()
        server.shutdown()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

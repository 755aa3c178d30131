#!/usr/bin/env python3
"""Slow and stalled clients against an HTTP server, for bench/serve_attack.sh.

usage: slow_clients.py HOST:PORT [--headers N] [--bodies N] [--wait SECONDS]

Opens N connections that send part of a request line and then nothing (a slowloris that never
finishes its headers), and N that send complete upload headers (Content-Length: 100000) and two
bytes of body, then nothing. Waits (at most --wait seconds) for the server to close each one, and
prints one JSON line: per kind, how many were opened, closed by the server, and the seconds from
opening to the server's close (max and median), and the statuses the uploads were answered with.
Standard library only.
"""
import json
import selectors
import socket
import statistics
import sys
import time


def main():
    args = sys.argv[1:]
    host, port = args[0].rsplit(":", 1)
    opts = {"--headers": 500, "--bodies": 500, "--wait": 120}
    for flag, value in zip(args[1::2], args[2::2]):
        opts[flag] = float(value) if flag == "--wait" else int(value)
    selector = selectors.DefaultSelector()
    opened = {"headers": 0, "bodies": 0}
    upload = (f"POST /v1/caption HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
              "Content-Length: 100000\r\n\r\n\xff\xd8").encode("latin-1")
    for kind, count, first in [("headers", opts["--headers"], b"POST /v1/capt"),
                               ("bodies", opts["--bodies"], upload)]:
        for _ in range(count):
            s = socket.create_connection((host, int(port)))
            s.sendall(first)
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ, {"kind": kind, "start": time.monotonic(), "answer": b""})
            opened[kind] += 1
    print(f"{sum(opened.values())} slow connections open", file=sys.stderr, flush=True)
    closed = {"headers": [], "bodies": []}
    statuses = {}
    deadline = time.monotonic() + opts["--wait"]
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            data = key.data
            try:
                chunk = key.fileobj.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                chunk = b""
            if chunk:
                data["answer"] += chunk
                continue
            closed[data["kind"]].append(time.monotonic() - data["start"])
            line = data["answer"].split(b"\r\n", 1)[0].decode("latin-1")
            status = line.split(" ")[1] if line.startswith("HTTP/") else "none"
            statuses[status] = statuses.get(status, 0) + 1
            selector.unregister(key.fileobj)
            key.fileobj.close()
    summary = {
        kind: {
            "opened": opened[kind],
            "closed_by_server": len(times),
            "max_s": round(max(times), 2) if times else None,
            "median_s": round(statistics.median(times), 2) if times else None,
        }
        for kind, times in closed.items()
    }
    summary["answers"] = statuses
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

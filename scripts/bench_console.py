#!/usr/bin/env python3
"""The console part of scripts/bench.sh (issue 14; standard library only).

  run --url URL --pid PID --user NAME [--requests N] [--settle S] [--report FILE]
      (password in $BENCH_CONSOLE_PASSWORD)

Against a running daemon whose store holds the benchmark's tasks and executions (seeded as
for the API part): logs in as NAME (an admin, so every page is shown) through
POST /api/auth/login, then
  RSS      VmRSS of the daemon after --settle quiet seconds, before any page
  pages    each page, --requests times on one keep-alive connection (after 5 warm-up
           requests): client time p50/p99 (nearest rank) and the Server-Timing `page` duration
           p50/p99 when the daemon sends it; every answer must be 200 text/html
  weight   each page's HTML plus the assets it links (<link href>, <script src>) as served,
           uncompressed unless the daemon compresses (Content-Encoding is reported)
  RSS      again after --settle quiet seconds: the growth with every page browsed
Targets: p99 <= 50 ms per page (server time), heaviest page <= 300 KB, RSS growth <= 10 MB.
"""

import argparse
import http.client
import json
import math
import os
import re
import sys
import time
import urllib.parse

TARGET_P99_MS = 50
TARGET_WEIGHT_KB = 300
TARGET_RSS_GROWTH_MB = 10


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pid, settle, window=3.0):
    """Waits `settle` seconds, then the highest VmRSS over `window` seconds (MB)."""
    time.sleep(settle)
    best, end = 0, time.time() + window
    while time.time() < end:
        best = max(best, status_kb(pid, "VmRSS"))
        time.sleep(0.2)
    return best / 1024.0


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)]


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.cookie = ""

    def request(self, method, path, body=None, headers=None):
        h = {"Cookie": self.cookie} if self.cookie else {}
        h.update(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r, data

    def login(self, user, password):
        r, data = self.request("POST", "/api/auth/login", {"username": user, "password": password})
        if r.status != 200:
            raise SystemExit(f"login as {user} failed: HTTP {r.status} {data[:200]!r}")
        cookies = [v.split(";", 1)[0] for k, v in r.getheaders() if k.lower() == "set-cookie"]
        self.cookie = "; ".join(cookies)


def server_timing(resp):
    v = resp.getheader("Server-Timing") or ""
    m = re.search(r"page;dur=([0-9.]+)", v)
    return float(m.group(1)) if m else None


def measure(client, path, n):
    for _ in range(5):
        client.request("GET", path)
    wall, server = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r, data = client.request("GET", path)
        wall.append((time.perf_counter() - t0) * 1000.0)
        if r.status != 200 or not (r.getheader("Content-Type") or "").startswith("text/html"):
            raise SystemExit(f"GET {path}: HTTP {r.status} {r.getheader('Content-Type')} {data[:200]!r}")
        st = server_timing(r)
        if st is not None:
            server.append(st)
    return wall, server


def weight(client, path):
    r, html = client.request("GET", path, headers={"Accept-Encoding": "gzip, br"})
    enc = {r.getheader("Content-Encoding") or "identity"}
    total = len(html)
    text = html.decode("utf-8", "replace")
    assets = re.findall(r'<(?:link[^>]+href|script[^>]+src)="(/assets/[^"]+)"', text)
    for a in assets:
        ar, body = client.request("GET", a, headers={"Accept-Encoding": "gzip, br"})
        enc.add(ar.getheader("Content-Encoding") or "identity")
        total += len(body)
    return total, len(html), assets, sorted(enc)


def run(args):
    password = os.environ.get("BENCH_CONSOLE_PASSWORD", "")
    out = []

    def say(line=""):
        print(line, file=sys.stderr)
        out.append(line)

    rss_before = rss_mb(args.pid, args.settle)
    c = Client(args.url)
    c.login(args.user, password)
    r, data = c.request("GET", "/api/tasks?limit=1")
    task_id = json.loads(data)["items"][0]["id"]
    pages = ["/", "/tasks", "/tasks?q=bench-api-005", f"/tasks/{task_id}", f"/tasks/{task_id}/edit",
             "/logs", "/logs?status=failed", "/exports", "/data-sources", "/users", "/audit"]
    say(f"console benchmark: {args.tasks} tasks, {args.executions} executions, "
        f"{args.requests} requests a page on one keep-alive connection")
    say(f"{'page':28} {'client p50':>10} {'client p99':>10} {'server p50':>10} {'server p99':>10} {'KB+assets':>10}")
    worst_p99, heaviest = 0.0, (0, "")
    encodings = set()
    for p in pages:
        wall, server = measure(c, p, args.requests)
        total, _html, _assets, enc = weight(c, p)
        encodings.update(enc)
        s50 = pct(server, 50) if server else float("nan")
        s99 = pct(server, 99) if server else float("nan")
        worst_p99 = max(worst_p99, s99 if server else pct(wall, 99))
        if total > heaviest[0]:
            heaviest = (total, p)
        say(f"{p:28} {pct(wall, 50):10.1f} {pct(wall, 99):10.1f} {s50:10.1f} {s99:10.1f} {total / 1024:10.1f}")
    rss_after = rss_mb(args.pid, args.settle)
    say()
    say(f"heaviest page: {heaviest[1]} {heaviest[0] / 1024:.1f} KB incl. assets (served {', '.join(sorted(encodings))})")
    say(f"RSS idle before {rss_before:.1f} MB, after browsing {rss_after:.1f} MB, growth {rss_after - rss_before:+.1f} MB")
    verdict = lambda ok: "PASS" if ok else "FAIL"
    say(f"{verdict(worst_p99 <= TARGET_P99_MS)} every page p99 <= {TARGET_P99_MS} ms (server time; worst {worst_p99:.1f} ms)")
    say(f"{verdict(heaviest[0] <= TARGET_WEIGHT_KB * 1024)} heaviest page <= {TARGET_WEIGHT_KB} KB ({heaviest[0] / 1024:.1f} KB)")
    say(f"{verdict(rss_after - rss_before <= TARGET_RSS_GROWTH_MB)} idle RSS growth <= {TARGET_RSS_GROWTH_MB} MB ({rss_after - rss_before:+.1f} MB)")
    if args.report:
        with open(args.report, "w") as f:
            f.write("\n".join(out) + "\n")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--requests", type=int, default=200)
    r.add_argument("--settle", type=float, default=5)
    r.add_argument("--tasks", type=int, default=0)
    r.add_argument("--executions", type=int, default=0)
    r.add_argument("--report")
    args = ap.parse_args()
    run(args)


if __name__ == "__main__":
    main()

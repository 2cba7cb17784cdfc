#!/usr/bin/env python3
"""The 08:00 herd (issue 33), for scripts/bench.sh (BENCH_ONLY=herd). Standard library only.

  tasks   writes the task file: COUNT tasks firing at one instant (6-field cron, UTC), each a
          20-row query, half on MariaDB (`herd_mysql`), half on PostgreSQL (`herd_pg`); then
          WARM tasks firing one a second from WARM_AT on, one at a time (the warm runs)
  herd    reads the store once the herd's fires are over: how many ran, by status, and the
          time from the fire until the last of them finished
  snapshot saves /metrics to a file
  metrics the run overhead histograms from /metrics since a snapshot (p50 as the bound of
          the bucket holding the median)
"""

import argparse
import sqlite3
import sys
import time
import urllib.request

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_scheduler import parse_time  # noqa: E402

MYSQL_SQL = "SELECT seq AS n, CONCAT('row ', seq) AS label FROM seq_1_to_20"
PG_SQL = "SELECT n, 'row ' || n AS label FROM generate_series(1, 20) AS n"


def cron_at(epoch):
    t = time.gmtime(epoch)
    return f"{t.tm_sec} {t.tm_min} {t.tm_hour} * * *"


def tasks(args):
    lines = ["tasks:"]
    for i in range(args.count + args.warm):
        warm = i >= args.count
        at = args.warm_at + (i - args.count) if warm else args.at
        name = f"warm_{i - args.count:03}" if warm else f"herd_{i:04}"
        mysql = i % 2 == 0
        lines += [
            f"  - name: {name}",
            f"    data_source: {'herd_mysql' if mysql else 'herd_pg'}",
            f'    cron: "{cron_at(at)}"',
            "    timeout: 60",
            "    output: { format: csv }",
            f'    sql: "{MYSQL_SQL if mysql else PG_SQL}"',
        ]
    with open(args.o, "w") as f:
        f.write("\n".join(lines) + "\n")


def herd(args):
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT task_name, scheduled_at, started_at, finished_at, status FROM executions"
        " WHERE task_name LIKE 'herd_%'"
    ).fetchall()
    statuses, last, fire = {}, None, None
    for _, scheduled, _, finished, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
        s, f = parse_time(scheduled), parse_time(finished)
        fire = s if fire is None else min(fire, s)
        if f is not None:
            last = f if last is None else max(last, f)
    print(f"runs={len(rows)}")
    print("statuses=" + ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
    print(f"skipped={statuses.get('skipped', 0)}")
    done = "" if last is None or fire is None else f"{last - fire:.2f}"
    print(f"all_done_s={done}")


def buckets(text, name):
    out = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def bucket_p50(before, after, name):
    """The bound of the bucket holding the median of the observations made between the two
    scrapes (cumulative counts, so differences per bound)."""
    a, b = buckets(after, name), buckets(before, name)
    diff = sorted((le, n - b.get(le, 0)) for le, n in a.items())
    if not diff or diff[-1][1] == 0:
        return "", 0
    total = diff[-1][1]
    for le, n in diff:
        if n >= total / 2:
            return f"{le * 1000:g}", int(total)
    return "", int(total)


def snapshot(args):
    with open(args.o, "w") as f:
        f.write(urllib.request.urlopen(args.url, timeout=10).read().decode())


def metrics(args):
    text = urllib.request.urlopen(args.url, timeout=10).read().decode()
    before = open(args.before).read() if args.before else ""
    for key, name in [
        ("start", "reportd_run_start_overhead_seconds"),
        ("finish", "reportd_run_finish_overhead_seconds"),
    ]:
        p50, n = bucket_p50(before, text, name)
        print(f"{key}_p50_le_ms={p50}")
        print(f"{key}_n={n}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tasks")
    t.add_argument("--count", type=int, required=True)
    t.add_argument("--at", type=int, required=True)
    t.add_argument("--warm", type=int, required=True)
    t.add_argument("--warm-at", type=int, required=True)
    t.add_argument("-o", required=True)
    h = sub.add_parser("herd")
    h.add_argument("--db", required=True)
    m = sub.add_parser("metrics")
    m.add_argument("--url", required=True)
    m.add_argument("--before", default="")
    n = sub.add_parser("snapshot")
    n.add_argument("--url", required=True)
    n.add_argument("-o", required=True)
    args = p.parse_args()
    {"tasks": tasks, "herd": herd, "metrics": metrics, "snapshot": snapshot}[args.cmd](args)


if __name__ == "__main__":
    main()

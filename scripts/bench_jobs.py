#!/usr/bin/env python3
"""Benchmark: export jobs, the download center (issue 16).

    bench_jobs.py REPORTD WORKDIR MYSQL_DB ROWS

Runs `reportd run` on a SQLite store under WORKDIR with a MariaDB source `bench` (database
MYSQL_DB, table `orders` of ROWS rows, built by bench.sh) and drives its API (python3,
standard library; the `mysql` client reads the server's process list). Four cases, each on a
fresh daemon:

  fairness    export.jobs defaults (fast 2, slow 1, fast_lane_max_rows 100000): three jobs of
              the whole table (estimated by EXPLAIN: slow lane), then, once they run, a job of
              100 rows (`WHERE id <= 100`: fast lane). Its time from submit to done, polled
              every 20 ms. Target: at most 3 s.
  memory      fast_workers 10, every job in the fast lane: ten jobs of the whole table (xlsx)
              at once. The daemon's peak RSS (VmHWM) after they are done. Target: 200 MB.
  cancel      a job of `SELECT SLEEP(60)`; once running, POST cancel; the time until the
              query is gone from the server's process list. Target: at most 2 s.
  throughput  fast_workers 2: N=4 jobs of the whole table (csv) submitted at once, against
              the same 4 jobs one after the other on the same daemon. Target: parallel at
              most 1.2 x back to back.

Prints one line per case and PASS/FAIL against its target; exits 0 whatever the figures.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

TOKEN = "bench-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, reportd, workdir, db, jobs_yaml):
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = f"""system_database:
  type: sqlite
  database: ./data/system.db
data_sources:
  bench:
    type: mysql
    url: "mysql://root@127.0.0.1:3306/{db}"
export:
  output_dir: ./exports
  temp_dir: ./temp
  max_file_size: 4GB
{jobs_yaml}http:
  bind: 127.0.0.1:{self.port}
  token: {TOKEN}
  file_server_url: {self.base}
scheduler:
  timezone: UTC
logging:
  file: ./reportd.log
daemon:
  pid_file: ./reportd.pid
"""
        with open(os.path.join(workdir, "config.yaml"), "w") as f:
            f.write(config)
        self.proc = subprocess.Popen(
            [reportd, "--config", "config.yaml", "run"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                raise SystemExit("the daemon never became healthy")
            time.sleep(0.1)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + TOKEN)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def submit(self, body):
        status, answer = self.call("POST", "/api/exports", body)
        if status != 202:
            raise SystemExit(f"submit: {status} {answer}")
        return answer["id"]

    def job(self, id):
        return self.call("GET", f"/api/exports/{id}")[1]

    def wait(self, ids, poll=0.05, timeout=600):
        deadline = time.time() + timeout
        pending = set(ids)
        while pending:
            for id in list(pending):
                if self.job(id)["status"] not in ("queued", "running"):
                    pending.discard(id)
            if time.time() > deadline:
                raise SystemExit(f"jobs {sorted(pending)} did not finish")
            time.sleep(poll)

    def hwm_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def verdict(ok):
    return "PASS" if ok else "FAIL"


def fairness(reportd, workdir, db, rows):
    d = Daemon(reportd, workdir, db, "")
    try:
        big = [d.submit({"data_source": "bench", "sql": "SELECT * FROM orders"}) for _ in range(3)]
        lanes = [d.job(i)["lane"] for i in big]
        while d.job(big[0])["status"] != "running":
            time.sleep(0.05)
        time.sleep(1)
        start = time.time()
        small = d.submit({"data_source": "bench", "sql": "SELECT * FROM orders WHERE id <= 100"})
        d.wait([small], poll=0.02)
        took = time.time() - start
        job = d.job(small)
        print(
            f"fairness    100-row job while three {rows}-row jobs run: {took:.2f} s "
            f"(lanes: big {','.join(lanes)}, small {job['lane']}, status {job['status']}, rows {job['rows']}) "
            f"target <= 3 s: {verdict(took <= 3 and job['status'] == 'done')}"
        )
        d.wait(big)
    finally:
        d.stop()


def memory(reportd, workdir, db, rows):
    d = Daemon(reportd, workdir, db, "  jobs:\n    fast_workers: 10\n    fast_lane_max_rows: 1000000000000\n")
    try:
        start = time.time()
        ids = [d.submit({"data_source": "bench", "sql": "SELECT * FROM orders"}) for _ in range(10)]
        d.wait(ids, poll=0.5)
        took = time.time() - start
        done = sum(1 for i in ids if d.job(i)["status"] == "done")
        hwm = d.hwm_mb()
        print(
            f"memory      ten {rows}-row xlsx jobs at once: peak RSS {hwm:.0f} MB, {took:.1f} s, {done}/10 done "
            f"target <= 200 MB: {verdict(hwm <= 200 and done == 10)}"
        )
    finally:
        d.stop()


def processlist(marker):
    out = subprocess.run(
        ["mysql", "-h127.0.0.1", "-uroot", "-N", "-e",
         f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'"],
        capture_output=True, text=True, check=True,
    )
    return int(out.stdout.strip())


def cancel(reportd, workdir, db):
    d = Daemon(reportd, workdir, db, "")
    try:
        times = []
        for n in range(5):
            marker = f"bench_cancel_{n}_{int(time.time())}"
            id = d.submit({"data_source": "bench", "sql": f"SELECT SLEEP(60) AS {marker}"})
            while processlist(marker) == 0:
                time.sleep(0.05)
            start = time.time()
            status, answer = d.call("POST", f"/api/exports/{id}/cancel")
            assert status == 202, answer
            while processlist(marker) > 0:
                time.sleep(0.02)
            times.append(time.time() - start)
            d.wait([id])
        print(
            f"cancel      query gone from the process list after: {', '.join(f'{t:.2f}' for t in times)} s "
            f"target <= 2 s: {verdict(max(times) <= 2)}"
        )
    finally:
        d.stop()


def throughput(reportd, workdir, db, rows, n=4):
    d = Daemon(reportd, workdir, db, "  jobs:\n    fast_workers: 2\n    fast_lane_max_rows: 1000000000000\n")
    body = {"data_source": "bench", "sql": "SELECT * FROM orders", "format": "csv"}
    try:
        start = time.time()
        for _ in range(n):
            d.wait([d.submit(body)], poll=0.05)
        serial = time.time() - start
        start = time.time()
        ids = [d.submit(body) for _ in range(n)]
        d.wait(ids, poll=0.05)
        parallel = time.time() - start
        ratio = parallel / serial
        print(
            f"throughput  {n} {rows}-row csv jobs on 2 workers: back to back {serial:.1f} s, at once {parallel:.1f} s, "
            f"ratio {ratio:.2f} target <= 1.2: {verdict(ratio <= 1.2)}"
        )
    finally:
        d.stop()


def main():
    reportd, workdir, db, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    only = os.environ.get("BENCH_JOBS_CASES", "fairness memory cancel throughput").split()
    cases = {
        "fairness": lambda: fairness(reportd, os.path.join(workdir, "fairness"), db, rows),
        "memory": lambda: memory(reportd, os.path.join(workdir, "memory"), db, rows),
        "cancel": lambda: cancel(reportd, os.path.join(workdir, "cancel"), db),
        "throughput": lambda: throughput(reportd, os.path.join(workdir, "throughput"), db, rows),
    }
    for name in only:
        cases[name]()


if __name__ == "__main__":
    main()

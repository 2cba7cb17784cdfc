#!/usr/bin/env python3
"""Benchmark: a run's notifications go out at the same time (issue 15).

    bench_notify.py REPORTD WORKDIR [REPEAT]

Starts one slow HTTP server on 127.0.0.1 that answers as DingTalk, WeCom (send and
upload_media), Feishu and a generic webhook do, each after the delay given in the request's
`delay` query parameter (seconds), and an SMTP stand-in (tests/stand_ins/smtp.py, plain) when
aiosmtpd is importable. A task with every channel, each with its own delay, runs with
`reportd task run` REPEAT times (and as many times with --no-notify); the notification time is
the median difference. Prints the delays, the slowest, their sum and the measured time, and
PASS when the measured time is at most the slowest channel's plus 0.5 s.
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAYS = {"dingtalk": 0.4, "wecom": 0.8, "feishu": 1.2, "webhook": 1.6}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        time.sleep(float(query.get("delay", ["0"])[0]))
        if url.path.endswith("/upload_media"):
            answer = {"errcode": 0, "errmsg": "ok", "type": "file", "media_id": "m1"}
        elif "/open-apis/" in url.path:
            answer = {"code": 0, "msg": "success", "data": {}}
        else:
            answer = {"errcode": 0, "errmsg": "ok"}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_smtp(repo, workdir):
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return None, None
    out = os.path.join(workdir, "mail")
    os.makedirs(out, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(repo, "tests/stand_ins/smtp.py"), "plain", out],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split()
    return proc, int(line[1])


def timed(reportd, workdir, args):
    t = time.monotonic()
    subprocess.run([reportd, "--config", "config.yaml", *args], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t


def main():
    reportd = os.path.abspath(sys.argv[1])
    workdir = sys.argv[2]
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(workdir, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    smtp, smtp_port = start_smtp(repo, workdir)
    base = f"http://127.0.0.1:{port}"
    email_config = (
        f"email:\n  smtp_server: 127.0.0.1\n  smtp_port: {smtp_port}\n  security: none\n"
        f"  from_address: bench@example.com\n"
        if smtp else ""
    )
    with open(os.path.join(workdir, "config.yaml"), "w") as f:
        f.write(
            "system_database:\n  type: sqlite\n  sqlite_path: ./data/reportd.db\n"
            "data_sources:\n  demo:\n    type: sqlite\n    database: ./data/demo.db\n    demo_data: true\n"
            f"dingtalk:\n  webhook_url: \"{base}/robot/send?access_token=t&delay={DELAYS['dingtalk']}\"\n"
            f"wecom:\n  webhook_url: \"{base}/cgi-bin/webhook/send?key=k&delay={DELAYS['wecom']}\"\n"
            f"feishu:\n  webhook_url: \"{base}/open-apis/bot/v2/hook/tok?delay={DELAYS['feishu']}\"\n"
            "security:\n  secret_key_file: ./data/secret.key\n"
            + email_config
        )
    email_task = "      email: { to: [ops@example.com] }\n" if smtp else ""
    with open(os.path.join(workdir, "t.yaml"), "w") as f:
        f.write(
            "tasks:\n  - name: five\n    data_source: demo\n    cron: \"0 9 1 1 *\"\n"
            "    sql: SELECT * FROM orders LIMIT 100\n    notify:\n"
            "      dingtalk: {}\n      wecom: { attach: false }\n      feishu: {}\n"
            f"      webhook: {{ url: \"{base}/hook?delay={DELAYS['webhook']}\", secret: s }}\n"
            + email_task
        )
    subprocess.run([reportd, "--config", "config.yaml", "task", "apply", "-f", "t.yaml"],
                   cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    timed(reportd, workdir, ["task", "run", "five", "--no-notify"])  # warm-up
    bare = [timed(reportd, workdir, ["task", "run", "five", "--no-notify"]) for _ in range(repeat)]
    full = [timed(reportd, workdir, ["task", "run", "five"]) for _ in range(repeat)]
    notify = statistics.median(full) - statistics.median(bare)
    slowest, total = max(DELAYS.values()), sum(DELAYS.values())
    channels = len(DELAYS) + (1 if smtp else 0)
    print(f"channels                 {channels} ({', '.join(DELAYS)}{', email' if smtp else ''})")
    print(f"delays (s)               {', '.join(f'{k} {v}' for k, v in DELAYS.items())}")
    print(f"run without notify (s)   median {statistics.median(bare):.3f} of {repeat}")
    print(f"run with notify (s)      median {statistics.median(full):.3f} of {repeat}")
    print(f"notification time (s)    {notify:.3f}   slowest {slowest}, sum {total}")
    ok = notify <= slowest + 0.5
    print(f"target: notify <= slowest + 0.5 s   {'PASS' if ok else 'FAIL'}")
    server.shutdown()
    if smtp:
        smtp.stdin.close()
        smtp.terminate()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

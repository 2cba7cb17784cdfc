#!/usr/bin/env python3
"""A stand-in for the DingTalk robot webhook, for reportd's integration tests.

Python standard library only. Usage:

    python3 dingtalk.py LOG_JSONL SECRET

Listens on 127.0.0.1 on an ephemeral port and prints the port (one line) on stdout.
Every POST is recorded as one JSON line in LOG_JSONL with: time (Unix seconds, float),
path, query (dict of lists), token, body (parsed JSON, or null), raw_len (bytes),
signed (timestamp and sign present), sign_ok (signature recomputed here with SECRET and
matching, timestamp within one hour of now), and the answer sent.

The signature is recomputed independently, exactly as DingTalk documents it:
sign = urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret))).

Behaviour is chosen by the access_token's prefix (the part before the first "_"):
  ok         -> {"errcode":0,"errmsg":"ok"} (a bad signature still gets 310000)
  fail       -> {"errcode":310000,"errmsg":"sign not match"}
  limitedN   -> the first N requests with this token get 130101, then ok
  slow       -> sleeps 5 s before answering (longer than the client timeout in tests)
  status500  -> HTTP 500 with a plain-text body
  notjson    -> HTTP 200 with an HTML body
  echo       -> errcode 400 whose errmsg repeats the token (tests redaction)
"""

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_PATH = sys.argv[1]
SECRET = sys.argv[2] if len(sys.argv) > 2 else ""
LOCK = threading.Lock()
COUNTS = {}

OK = {"errcode": 0, "errmsg": "ok"}
SIGN_NOT_MATCH = {"errcode": 310000, "errmsg": "sign not match"}
BAD_TIMESTAMP = {"errcode": 310000, "errmsg": "invalid timestamp"}
TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}


def expected_sign(timestamp):
    msg = (timestamp + "\n" + SECRET).encode("utf-8")
    digest = hmac.new(SECRET.encode("utf-8"), msg, digestmod=hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        received = time.time()
        url = urllib.parse.urlsplit(self.path)
        # parse_qs decodes the percent-encoding: the sign compared is the base64 text.
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        token = (query.get("access_token") or [""])[0]
        behaviour = token.split("_", 1)[0]
        timestamp = (query.get("timestamp") or [None])[0]
        sign = (query.get("sign") or [None])[0]
        signed = timestamp is not None and sign is not None

        sign_ok = False
        timestamp_ok = False
        if signed:
            try:
                timestamp_ok = abs(int(timestamp) - received * 1000) <= 3600 * 1000
            except ValueError:
                timestamp_ok = False
            sign_ok = timestamp_ok and hmac.compare_digest(sign, expected_sign(timestamp))

        with LOCK:
            COUNTS[token] = COUNTS.get(token, 0) + 1
            count = COUNTS[token]

        status, answer, content_type = 200, OK, "application/json"
        if behaviour == "fail":
            answer = SIGN_NOT_MATCH
        elif signed and not timestamp_ok:
            answer = BAD_TIMESTAMP
        elif signed and not sign_ok:
            answer = SIGN_NOT_MATCH
        elif behaviour.startswith("limited"):
            try:
                limit = int(behaviour[len("limited"):])
            except ValueError:
                limit = 0
            if count <= limit:
                answer = TOO_FAST
        elif behaviour == "status500":
            status, answer, content_type = 500, b"internal error\nsecond line", "text/plain"
        elif behaviour == "notjson":
            answer, content_type = b"<html>gateway</html>", "text/html"
        elif behaviour == "echo":
            answer = {"errcode": 400, "errmsg": "token " + token + " is not allowed"}

        record = {
            "time": received,
            "path": url.path,
            "query": query,
            "token": token,
            "body": body,
            "raw_len": len(raw),
            "signed": signed,
            "sign_ok": sign_ok,
            "answer": answer if isinstance(answer, dict) else answer.decode("utf-8"),
        }
        with LOCK:
            with open(LOG_PATH, "a", encoding="utf-8") as log:
                log.write(json.dumps(record, ensure_ascii=False) + "\n")

        if behaviour == "slow":
            time.sleep(5)
        try:
            self.answer(status, answer, content_type)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

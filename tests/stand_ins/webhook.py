#!/usr/bin/env python3
"""A stand-in for a generic webhook receiver, for reportd's integration tests.

Python standard library only. Usage:

    python3 webhook.py LOG_JSONL SECRET

Prints its port, logs every request as a JSON line (common.py) with: time, path, method,
content_type, user_agent, timestamp (X-Reportd-Timestamp), delivery (X-Reportd-Delivery),
signature (X-Reportd-Signature or null), sig_ok (recomputed here as "sha256=" + hex
HMAC-SHA256(SECRET, timestamp + "." + raw body), timestamp within five minutes), body
(parsed JSON, or null), raw_len, and the status answered.

Behaviour by the path's first segment:
  /ok…         -> 200
  /fail500_N…  -> 500 for the first N requests to this path, then 200
  /always503…  -> 503
  /status400…  -> 400 (a refusal: never worth a retry)
  /slow…       -> sleeps 5 s, then 200
"""

import hashlib
import hmac
import sys

import common

SECRET = sys.argv[2] if len(sys.argv) > 2 else ""


class Handler(common.Handler):
    def do_POST(self):
        received, path, _, raw, body = self.read_request()
        behaviour = path.strip("/").split("/", 1)[0]
        n = common.count(path)
        timestamp = self.headers.get("X-Reportd-Timestamp")
        signature = self.headers.get("X-Reportd-Signature")
        sig_ok = False
        if signature is not None and timestamp is not None:
            mac = hmac.new(SECRET.encode("utf-8"), timestamp.encode("ascii") + b"." + raw, hashlib.sha256)
            sig_ok = common.fresh(timestamp, received, 300) and hmac.compare_digest(
                signature, "sha256=" + mac.hexdigest()
            )

        status = 200
        if behaviour.startswith("fail500") and n <= common.first_n(behaviour, "fail500"):
            status = 500
        elif behaviour == "always503":
            status = 503
        elif behaviour == "status400":
            status = 400

        common.log({
            "time": received,
            "path": path,
            "method": self.command,
            "content_type": self.headers.get("Content-Type"),
            "user_agent": self.headers.get("User-Agent"),
            "timestamp": timestamp,
            "delivery": self.headers.get("X-Reportd-Delivery"),
            "signature": signature,
            "sig_ok": sig_ok,
            "body": body,
            "raw_len": len(raw),
            "status": status,
        })
        answer = {"received": status == 200} if status < 500 else b"upstream broken\nretry later"
        content_type = "application/json" if status < 500 else "text/plain"
        self.answer(status, answer, content_type, delay=5 if behaviour == "slow" else 0)


if __name__ == "__main__":
    common.serve(Handler)

#!/usr/bin/env python3
"""A stand-in for the Feishu (飞书) custom-bot webhook, for reportd's integration tests.

Python standard library only. Usage:

    python3 feishu.py LOG_JSONL SECRET KEYWORD

Prints its port, logs every request as a JSON line (common.py) with: time, path, token (the
last path segment), body (parsed JSON), raw_len (bytes), signed (timestamp and sign in the
body), sign_ok (recomputed here with SECRET, timestamp within one hour of now), and the
answer.

The signature is recomputed independently, exactly as Feishu documents it (not DingTalk's
way): timestamp = Unix seconds as a string, sign = base64(HMAC-SHA256(key = timestamp +
"\\n" + secret, msg = b"")), both in the JSON body. A signed request with a bad signature
or a stale timestamp gets 19021; a body that is not an interactive JSON 2.0 card, or over 20,000
bytes, gets 9499.

Behaviour by the token's prefix (before the first "_"):
  ok         -> {"code":0,"msg":"success","data":{}} (signature checked when present)
  signed     -> as ok, but an unsigned request gets 19021 (the bot has signing on)
  old        -> {"StatusCode":0,"StatusMessage":"success"} (older bots)
  keyword    -> 19024 unless the body's text contains KEYWORD
  ip         -> 19022 ip not allowed
  limitedN   -> the first N requests with this token get 11232, then ok
  slow       -> sleeps 5 s before answering
  status500  -> HTTP 500 with a plain-text body
"""

import base64
import hashlib
import hmac
import json
import sys

import common

SECRET = sys.argv[2] if len(sys.argv) > 2 else ""
KEYWORD = sys.argv[3] if len(sys.argv) > 3 else "reportd"
MAX_BODY_BYTES = 20_000

OK = {"code": 0, "msg": "success", "data": {}}
OLD_OK = {"StatusCode": 0, "StatusMessage": "success"}
BAD_SIGN = {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
IP_DENIED = {"code": 19022, "msg": "Ip Not Allowed"}
NO_KEYWORD = {"code": 19024, "msg": "Key Words Not Found"}
TOO_FAST = {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}
BAD_REQUEST = {"code": 9499, "msg": "Bad Request"}


def expected_sign(timestamp):
    key = (timestamp + "\n" + SECRET).encode("utf-8")
    return base64.b64encode(hmac.new(key, b"", digestmod=hashlib.sha256).digest()).decode("ascii")


class Handler(common.Handler):
    def do_POST(self):
        received, path, _, raw, body = self.read_request()
        token = path.rstrip("/").rsplit("/", 1)[-1]
        behaviour = token.split("_", 1)[0]
        n = common.count(token)
        timestamp = (body or {}).get("timestamp")
        sign = (body or {}).get("sign")
        signed = isinstance(timestamp, str) and isinstance(sign, str)
        sign_ok = False
        if signed:
            sign_ok = common.fresh(timestamp, received, 3600) and hmac.compare_digest(
                sign, expected_sign(timestamp)
            )

        status, answer, content_type = 200, OK, "application/json"
        card = body.get("card") if isinstance(body, dict) else None
        # A JSON 2.0 card (its markdown renders tables): schema "2.0", body.elements.
        card_ok = (
            isinstance(body, dict)
            and body.get("msg_type") == "interactive"
            and isinstance(card, dict)
            and card.get("schema") == "2.0"
            and isinstance(card.get("body", {}).get("elements"), list)
        )
        if not path.startswith("/open-apis/bot/v2/hook/") or not card_ok or len(raw) > MAX_BODY_BYTES:
            status, answer = 400, BAD_REQUEST
        elif (signed and not sign_ok) or (behaviour == "signed" and not signed):
            answer = BAD_SIGN
        elif behaviour == "old":
            answer = OLD_OK
        elif behaviour == "keyword" and KEYWORD not in json.dumps(body.get("card"), ensure_ascii=False):
            answer = NO_KEYWORD
        elif behaviour == "ip":
            answer = IP_DENIED
        elif behaviour.startswith("limited") and n <= common.first_n(behaviour, "limited"):
            answer = TOO_FAST
        elif behaviour == "status500":
            status, answer, content_type = 500, b"internal error\nsecond line", "text/plain"

        common.log({
            "time": received,
            "path": path,
            "token": token,
            "body": body,
            "raw_len": len(raw),
            "signed": signed,
            "sign_ok": sign_ok,
            "answer": answer if isinstance(answer, dict) else answer.decode("utf-8"),
        })
        self.answer(status, answer, content_type, delay=5 if behaviour == "slow" else 0)


if __name__ == "__main__":
    common.serve(Handler)

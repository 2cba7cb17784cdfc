#!/usr/bin/env python3
"""A stand-in for the WeCom (企业微信) group-robot webhook, for reportd's integration tests.

Python standard library only. Usage:

    python3 wecom.py LOG_JSONL

Prints its port, logs every request as a JSON line (common.py) with: time, path, query,
key, kind ("send" or "upload"), and for a send: body (parsed JSON), content_bytes (of a
markdown_v2 content), media_ok (a file message names a media_id issued to this key); for an
upload: content_length (the header, or null), chunked, parts (name, filename, bytes,
sha256 of each multipart part), upload_ok (exactly one part, named "media", with a
filename), media_id; and the answer.

As WeCom does: markdown_v2 content over 4096 bytes gets 40058, an unknown msgtype 40008, a
file message whose media_id was not issued to this key 40007, an upload that is not one
part `media` with a filename 40058, a missing `type=file` 40058.

Behaviour by the key's prefix (before the first "_"):
  ok         -> {"errcode":0,"errmsg":"ok"} (an upload also gets type, media_id, created_at)
  invalid    -> 93000 invalid webhook url
  limitedN   -> the first N requests with this key get 45009, then as ok
  toolong    -> 40058 on every send
  slow       -> sleeps 5 s before answering (longer than the client timeout in tests)
  status500  -> HTTP 500 with a plain-text body
"""

import email.parser
import email.policy
import hashlib
import uuid

import common

OK = {"errcode": 0, "errmsg": "ok"}
INVALID_KEY = {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1]"}
TOO_FAST = {"errcode": 45009, "errmsg": "api freq out of limit"}
TOO_LONG = {"errcode": 40058, "errmsg": "markdown_v2.content exceed max length 4096"}
BAD_TYPE = {"errcode": 40008, "errmsg": "invalid message type"}
BAD_MEDIA = {"errcode": 40007, "errmsg": "invalid media_id"}
MAX_MARKDOWN_BYTES = 4096
ISSUED = {}  # media_id -> key


def multipart_parts(content_type, raw):
    """Each part of a multipart/form-data body: name, filename, bytes, sha256."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        return []
    parts = []
    for part in message.iter_parts():
        data = part.get_payload(decode=True) or b""
        parts.append({
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    return parts


class Handler(common.Handler):
    def do_POST(self):
        received, path, query, raw, body = self.read_request()
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        key = (query.get("key") or [""])[0]
        behaviour = key.split("_", 1)[0]
        n = common.count(key)
        record = {"time": received, "path": path, "query": query, "key": key}

        answer = OK
        if path.endswith("/upload_media"):
            record["kind"] = "upload"
            parts = multipart_parts(self.headers.get("Content-Type") or "", raw)
            upload_ok = (
                len(parts) == 1 and parts[0]["name"] == "media" and bool(parts[0]["filename"])
            )
            record.update({
                "content_length": self.headers.get("Content-Length"),
                "chunked": chunked,
                "parts": parts,
                "upload_ok": upload_ok,
            })
            if (query.get("type") or [""])[0] != "file":
                answer = {"errcode": 40058, "errmsg": "type must be file"}
            elif not upload_ok:
                answer = {"errcode": 40058, "errmsg": "expect one part named media with a filename"}
        else:
            record["kind"] = "send"
            record["body"] = body
            msgtype = (body or {}).get("msgtype")
            if msgtype == "markdown_v2":
                content = body.get("markdown_v2", {}).get("content", "")
                record["content_bytes"] = len(content.encode("utf-8"))
                if record["content_bytes"] > MAX_MARKDOWN_BYTES:
                    answer = TOO_LONG
            elif msgtype == "file":
                media_id = body.get("file", {}).get("media_id")
                record["media_ok"] = ISSUED.get(media_id) == key
                if not record["media_ok"]:
                    answer = BAD_MEDIA
            elif msgtype != "text":
                answer = BAD_TYPE

        if behaviour == "invalid":
            answer = INVALID_KEY
        elif behaviour.startswith("limited") and n <= common.first_n(behaviour, "limited"):
            answer = TOO_FAST
        elif behaviour == "toolong" and record["kind"] == "send":
            answer = TOO_LONG
        status, content_type = 200, "application/json"
        if behaviour == "status500":
            status, answer, content_type = 500, b"internal error\nsecond line", "text/plain"
        if answer is OK and record["kind"] == "upload":
            media_id = "media-" + uuid.uuid4().hex
            ISSUED[media_id] = key
            record["media_id"] = media_id
            answer = dict(OK, type="file", media_id=media_id, created_at=str(int(received)))
        record["answer"] = answer if isinstance(answer, dict) else answer.decode("utf-8")
        common.log(record)
        self.answer(status, answer, content_type, delay=5 if behaviour == "slow" else 0)


if __name__ == "__main__":
    common.serve(Handler)

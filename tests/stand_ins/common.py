"""What reportd's HTTP stand-ins share (Python standard library only).

A stand-in listens on 127.0.0.1 on an ephemeral port, prints the port (one line) on stdout,
and records every request as one JSON line in the log file given as its first argument.
Each picks its behaviour from a prefix (token, key or path) and counts the requests per
prefix-carrying name, so "limitedN" / "fail500_N" style behaviours can answer the first N
requests differently.
"""

import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_PATH = sys.argv[1]
LOCK = threading.Lock()
COUNTS = {}


def count(name):
    """How many requests `name` has had, this one included."""
    with LOCK:
        COUNTS[name] = COUNTS.get(name, 0) + 1
        return COUNTS[name]


def first_n(behaviour, prefix):
    """N of a behaviour named `<prefix>N` (0 when N is missing or bad)."""
    try:
        return int(behaviour[len(prefix):].lstrip("_"))
    except ValueError:
        return 0


def parse_json(raw):
    """The body as JSON, or None."""
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def fresh(timestamp, now, seconds):
    """Whether `timestamp` (Unix seconds, a string) is within `seconds` of `now`."""
    try:
        return abs(int(timestamp) - now) <= seconds
    except (TypeError, ValueError):
        return False


def log(record):
    """Appends one JSON line to the log."""
    with LOCK:
        with open(LOG_PATH, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


class Handler(BaseHTTPRequestHandler):
    """Reads request bodies (Content-Length or chunked) and writes answers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_request(self):
        """Receipt time, URL path, query (dict of lists), raw body and its JSON (or None)."""
        received = time.time()
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        raw, _ = self.read_body()
        return received, url.path, query, raw, parse_json(raw)

    def read_body(self):
        """The raw body and whether it came chunked."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data, True
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length), False

    def answer(self, status, body, content_type="application/json", delay=0):
        """Sends `body` (a dict as JSON, or bytes), after `delay` seconds."""
        if delay:
            time.sleep(delay)
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


def serve(handler):
    """Serves `handler` on an ephemeral port, printed first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()

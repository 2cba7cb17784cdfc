#!/usr/bin/env python3
"""A real SMTP server for the e-mail tests (aiosmtpd).

    smtp.py MODE OUT_DIR [--cert PEM --key PEM] [--user U --password P]

MODE is `plain` (no TLS), `starttls` (STARTTLS required before MAIL and AUTH) or `tls`
(implicit TLS from the first byte). With --user, AUTH (PLAIN/LOGIN) is required and only
that user and password are accepted (535 otherwise).

Listens on 127.0.0.1 on an ephemeral port and prints `PORT <n>` on one line once ready.
Each accepted message N is saved as OUT_DIR/N.eml (the raw bytes as received) and then
OUT_DIR/N.json ({"mail_from": ..., "rcpt_tos": [...]}); the reply is `250 OK queued`.
Exits when its standard input closes (the test that started it is gone) or on SIGTERM.
"""

import argparse
import asyncio
import itertools
import json
import logging
import os
import ssl
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with open(os.path.join(self.out_dir, f"{n}.eml.tmp"), "wb") as f:
            f.write(raw)
        os.rename(
            os.path.join(self.out_dir, f"{n}.eml.tmp"),
            os.path.join(self.out_dir, f"{n}.eml"),
        )
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)}
        with open(os.path.join(self.out_dir, f"{n}.json.tmp"), "w") as f:
            json.dump(meta, f)
        os.rename(
            os.path.join(self.out_dir, f"{n}.json.tmp"),
            os.path.join(self.out_dir, f"{n}.json"),
        )
        return "250 OK queued"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["plain", "starttls", "tls"])
    p.add_argument("out_dir")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password", default="")
    args = p.parse_args()
    # aiosmtpd warns about AUTH without STARTTLS, which plain and implicit-TLS modes mean.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    context = None
    if args.mode != "plain":
        if not (args.cert and args.key):
            p.error(f"mode {args.mode} needs --cert and --key")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    handler = Saver(args.out_dir)
    auth = authenticator(args.user, args.password) if args.user else None

    def factory():
        kwargs = dict(
            decode_data=False,
            enable_SMTPUTF8=True,
            authenticator=auth,
            auth_required=auth is not None,
            # Implicit TLS is invisible to aiosmtpd: it only knows about STARTTLS.
            auth_require_tls=args.mode == "starttls",
            hostname="localhost",
        )
        if args.mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        return SMTP(handler, **kwargs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host="127.0.0.1",
            port=0,
            ssl=context if args.mode == "tls" else None,
        )
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)

    def watch_stdin():
        try:
            sys.stdin.buffer.read()
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()

"""Real storage servers on 127.0.0.1 for the delivery tests (scripts/test.sh installs them).

    storage.py s3   DIR   moto_server (S3, path-style); creates the bucket `reports`
    storage.py ftp  DIR   pyftpdlib; user `reportd`, password `ftp-pass`, files under DIR/ftp
    storage.py sftp DIR   asyncssh SFTP server; the client key DIR/id_ed25519 is authorised
                          for user `reportd`, files under DIR/sftp (the session's root);
                          DIR/known_hosts holds the server's key, DIR/known_hosts_other a
                          different one (a host-key mismatch)

Prints `PORT n` once listening and runs until its standard input closes.
"""

import os
import socket
import sys
import threading


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_stdin_close():
    sys.stdin.read()
    os._exit(0)


def s3(_dir):
    from moto.server import ThreadedMotoServer
    import boto3

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="reports")
    return port


def ftp(base):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = os.path.join(base, "ftp")
    os.makedirs(root, exist_ok=True)
    auth = DummyAuthorizer()
    auth.add_user("reportd", "ftp-pass", root, perm="elradfmwMT")
    handler = FTPHandler
    handler.authorizer = auth
    handler.passive_ports = range(50000, 65000)
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def sftp(base):
    import asyncio
    import asyncssh

    root = os.path.join(base, "sftp")
    os.makedirs(root, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    other_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = os.path.join(base, "id_ed25519")
    client_key.write_private_key(key_path)
    os.chmod(key_path, 0o600)
    authorized = asyncssh.import_authorized_keys(
        client_key.export_public_key().decode()
    )
    port = free_port()
    for name, key in (("known_hosts", host_key), ("known_hosts_other", other_key)):
        with open(os.path.join(base, name), "w") as f:
            f.write(f"[127.0.0.1]:{port} {key.export_public_key().decode().strip()}\n")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def public_key_auth_supported(self):
            return True

        def validate_public_key(self, username, key):
            return username == "reportd" and authorized.validate(key, "127.0.0.1", "127.0.0.1") is not None

    loop = asyncio.new_event_loop()

    async def start():
        await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[host_key],
            server_factory=Server,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
            allow_scp=False,
        )

    loop.run_until_complete(start())
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return port


def main():
    kind, base = sys.argv[1], sys.argv[2]
    port = {"s3": s3, "ftp": ftp, "sftp": sftp}[kind](base)
    print(f"PORT {port}", flush=True)
    wait_for_stdin_close()


if __name__ == "__main__":
    main()

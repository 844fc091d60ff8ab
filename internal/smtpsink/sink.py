"""A real SMTP server for tenantgate's tests: aiosmtpd (pinned by `make
tools`) writing every message it accepts to a directory, one file per
message, named <n>.eml and renamed into place only once complete.

    python3 sink.py --dir DIR --port PORT [--tls starttls|smtps|none]
                    [--cert FILE --key FILE] [--user U --password-file F]

It prints "ready" once it accepts connections and runs until its standard
input closes (the test process ended) or it gets SIGTERM.
"""
import argparse
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Maildir:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        tmp = os.path.join(self.dir, ".%d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.dir, "%06d.eml" % n))
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", default="starttls", choices=["starttls", "smtps", "none"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password-file")
    a = p.parse_args()

    kwargs = {}
    ctx = None
    if a.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    if a.tls == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.user:
        with open(a.password_file) as f:
            password = f.read().strip()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == a.user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, handled=False)

        # With smtps, aiosmtpd 1.4.6 does not count the implicit TLS as
        # TLS for auth_require_tls; the connection is encrypted anyway.
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=(a.tls == "starttls"))
    ctrl = Controller(Maildir(a.dir), hostname="127.0.0.1", port=a.port,
                      ssl_context=(ctx if a.tls == "smtps" else None),
                      server_hostname="localhost", **kwargs)
    ctrl.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        ctrl.stop()


if __name__ == "__main__":
    main()

"""TLS peers for unit tests: certificates made with ovs-pki (lab/pki.py) and a client that connects
to a green listener from a green thread, as a host's ovs-vswitchd or ovsdb-server would."""

from __future__ import annotations

from typing import Any

import eventlet
from eventlet.green import socket, ssl

from lab.pki import Cert, Pki

HELLO_OF13 = bytes.fromhex("0400000800000001")  # what a plain OpenFlow switch says first


def client_context(pki: Pki, cert: Cert | None) -> ssl.SSLContext:
    """A host's side: it trusts the controller's CA and shows `cert` (None: no certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # as OVS: it checks the CA, not a name
    ctx.load_verify_locations(pki.controller_ca)
    if cert is not None:
        ctx.load_cert_chain(cert.certificate, cert.private_key)
    return ctx


class Peer:
    """One connection from a green thread: TLS with a context, or plain bytes (or silence)."""

    def __init__(self, port: int, ctx: ssl.SSLContext | None = None, send: bytes = b"", hold: float = 0.0) -> None:
        self.port, self.ctx, self.send, self.hold = port, ctx, send, hold
        self.error: Exception | None = None
        self.got = b""
        self.thread = eventlet.spawn(self._run)

    def _run(self) -> None:
        sock: Any = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            if self.ctx is not None:
                sock = self.ctx.wrap_socket(sock)
            if self.send:
                sock.sendall(self.send)
            if self.hold:
                eventlet.sleep(self.hold)
            self.got = sock.recv(100)  # the server's first words, or b"" when it closed on us
        except (OSError, ssl.SSLError) as e:
            self.error = e
        finally:
            sock.close()

    def wait(self) -> Peer:
        self.thread.wait()
        return self

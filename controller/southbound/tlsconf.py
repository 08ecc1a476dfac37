"""TLS on the control channels: the context made from `[tls]`, who a peer is by its certificate,
and the admission of one accepted connection (a verified TLS handshake, or plain TCP where the
operator allows it).

A host's name is its certificate's subject CN as `ovs-pki` makes it: `ovs-pki req -u h7` gives
"h7", `ovs-pki req h7` gives "h7 id:<uuid or date>"; both are the host "h7" (`host_of_cn`). The
OVSDB connections and OpenFlow datapaths carry it as `peer_cn` (None on plain TCP).

Admission tells TLS from plain TCP by the first byte the peer sends (a TLS record starts with
0x16; OpenFlow with its version, OVSDB with "{"). A plain OVSDB peer (ovsdb-server dialling a
`tcp:` manager) waits for us to speak first, so where plain TCP is allowed a peer that says
nothing for PLAIN_AFTER_S is taken as plain; where TLS is required it gets HANDSHAKE_TIMEOUT_S
to start its handshake and finish it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from eventlet.green import ssl  # green also where the process is not monkey-patched (tests)

TLS_HANDSHAKE_RECORD = 0x16  # the first byte of a ClientHello
HANDSHAKE_TIMEOUT_S = 10.0
PLAIN_AFTER_S = 1.0
REASONS = ("plain", "certificate", "handshake", "timeout")  # why a connection was refused


def host_of_cn(cn: str) -> str:
    """The host a certificate's CN names: ovs-pki's "h7 id:<uuid>" and "h7" (made with -u) are both h7."""
    return cn.split(" id:", 1)[0]


def subject_cn(cert: dict[str, Any] | None) -> str | None:
    """The subject's commonName of a certificate as ssl's getpeercert() decodes it (the last one)."""
    cn = None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
    return cn


def peer_cn(sock: Any) -> str | None:
    """The host named by the peer's verified certificate; None on a plain connection."""
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        cn = subject_cn(getpeercert())
    except (OSError, ValueError):
        return None
    return host_of_cn(cn) if cn else None


@dataclass(frozen=True)
class TlsFiles:
    """`[tls]`: the controller's key and certificate, and the CA(s) that sign its peers' certificates."""

    private_key: str
    certificate: str
    ca_certificate: str | None


def server_context(files: TlsFiles, verify_peers: bool = True) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later; with verify_peers a peer must show a certificate
    signed by files.ca_certificate. A file that cannot be read, or a key that does not match
    its certificate, raises ValueError naming the file."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(files.certificate, files.private_key)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"certificate {files.certificate} with private_key {files.private_key}: "
                         f"{_text(e)}") from None
    if verify_peers:
        if not files.ca_certificate:
            raise ValueError("verifying peers needs ca_certificate")
        try:
            ctx.load_verify_locations(files.ca_certificate)
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"ca_certificate {files.ca_certificate}: {_text(e)}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _text(e: Exception) -> str:
    return getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e) or type(e).__name__


class Refused(Exception):
    """A connection not admitted: `reason` is one of REASONS, the message says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _reason(e: ssl.SSLError) -> str:
    what = f"{getattr(e, 'reason', '') or ''} {getattr(e, 'verify_message', '') or ''}".upper()
    return "certificate" if isinstance(e, ssl.SSLCertVerificationError) or "CERTIFICATE" in what \
        or "UNKNOWN_CA" in what else "handshake"


def _detail(e: ssl.SSLError) -> str:
    verify = getattr(e, "verify_message", None)
    reason = getattr(e, "reason", None)
    return f"{reason or type(e).__name__}{f' ({verify})' if verify else ''}"


def _first_byte(sock: Any, timeout: float) -> int | None:
    """The first byte the peer sent, left in the socket; None if it sent nothing in time."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return None
    except OSError as e:
        raise Refused("handshake", f"connection lost before a handshake: {e}") from None
    if not data:
        raise Refused("handshake", "closed before a handshake")
    return data[0]


def admit(sock: Any, ctx: ssl.SSLContext | None, plain_ok: bool,
          handshake_timeout: float = HANDSHAKE_TIMEOUT_S, plain_after: float = PLAIN_AFTER_S) -> Any:
    """The connection to speak on: `sock` itself on plain TCP (ctx None, or plain_ok and the peer
    does not start TLS), else TLS over it after a verified handshake. Raises Refused."""
    if ctx is None:
        return sock
    started = time.monotonic()
    first = _first_byte(sock, plain_after if plain_ok else handshake_timeout)
    if first != TLS_HANDSHAKE_RECORD:
        if plain_ok:
            sock.settimeout(None)
            return sock
        if first is None:
            raise Refused("timeout", f"no TLS handshake within {handshake_timeout:g} s")
        raise Refused("plain", "plain TCP where TLS is required ([tls] required)")
    tls = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    tls.settimeout(max(0.1, handshake_timeout - (time.monotonic() - started)))
    try:
        tls.do_handshake()
    except TimeoutError:
        raise Refused("timeout", f"TLS handshake not done within {handshake_timeout:g} s") from None
    except ssl.SSLError as e:
        raise Refused(_reason(e), _detail(e)) from None
    except OSError as e:
        raise Refused("handshake", f"connection lost in the TLS handshake: {e}") from None
    tls.settimeout(None)
    return tls

"""Who may talk to the REST API: the bearer token, and the names a request may call us by.

The token lives in a file (`[overlay] api_token_file`, by default `<state_dir>/api.token`, made at
the first start) so it never appears in the config, the command line or a log. The file is
re-read when it changes, so a token can be rotated without a restart; if it disappears or becomes
empty every protected call is refused (fail closed).

The Host header is checked against the listener's own names: a page from another site that
re-points its DNS name at 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import stat
from collections.abc import Iterable

LOG = logging.getLogger(__name__)
READ_METHODS = frozenset({"GET", "HEAD"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def make_token(path: str) -> bool:
    """Write a new random token to `path` (mode 0600) unless a file is there; True if it made one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return True


def read_token(path: str) -> bytes:
    """The token in the file (surrounding whitespace dropped); ValueError if there is none."""
    with open(path, "rb") as fh:
        token = fh.read(4096).strip()
    if not token:
        raise ValueError(f"API token file {path} is empty")
    return token


class TokenAuth:
    """Decides whether a request needs the token, and checks it in constant time."""

    def __init__(self, path: str | None = None, read_open: bool = False) -> None:
        self.path = path or None
        self.read_open = read_open
        self._token: bytes | None = None
        self._stamp: tuple[int, int, int] | None = None
        if self.path is not None:
            self._token = read_token(self.path)  # a bad file stops the controller at start
            st = os.stat(self.path)
            self._stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                LOG.warning("API token file %s is readable by group or others; chmod 600 it", self.path)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def required(self, method: str) -> bool:
        if not self.enabled:
            return False
        return not (self.read_open and method in READ_METHODS)

    def _current(self) -> bytes | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._token, self._stamp = read_token(self.path), stamp
                LOG.info("API token file %s re-read", self.path)
        except (OSError, ValueError) as e:
            if self._token is not None:
                LOG.error("API token unusable (%s): refusing authenticated calls", e)
            self._token, self._stamp = None, None
        return self._token

    def check(self, authorization: str | None) -> bool:
        """True if the Authorization header carries the token."""
        token = self._current()
        if token is None or not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # WSGI hands headers over as latin-1 text: back to the bytes that were sent.
        try:
            raw = given.strip().encode("latin-1")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(raw, token)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def host_of(header: str) -> str:
    """The name in a Host header, without its port, lower case: "[::1]:8080" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, sep, port = header.rpartition(":")
    return name.rstrip(".") if sep and port.isdigit() and ":" not in name else header.rstrip(".")


class HostNames:
    """The names a request's Host header may give a listener (`[overlay] api_host_names` adds some).

    Always: the listen address; on loopback or a wildcard address also localhost, 127.0.0.1 and
    ::1; on a wildcard address any IP address literal (a page is only ever same-origin with an IP
    literal if it was loaded from that IP: no rebinding through it); this machine's host names.
    A request without a Host header (HTTP/1.0: no browser) is let through.
    """

    def __init__(self, listen: str, names: Iterable[str] = ()) -> None:
        ip = _ip(listen)
        self.any_ip = ip is not None and ip.is_unspecified
        self.names = {host_of(n) for n in names if n.strip()} | {host_of(listen)}
        if ip is not None and (ip.is_loopback or ip.is_unspecified) or listen.lower() == "localhost":
            self.names |= set(LOOPBACK_NAMES)

    def allows(self, header: str | None) -> bool:
        if header is None:
            return True
        name = host_of(header)
        return name in self.names or (self.any_ip and _ip(name) is not None)

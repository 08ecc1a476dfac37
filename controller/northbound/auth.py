"""Bearer-token check for the REST API.

The token lives in a file (`[overlay] api_token_file`) so it never appears in the config, the
command line or a log. The file is re-read when it changes, so a token can be rotated without a
restart; if it disappears or becomes empty every protected call is refused (fail closed).
"""

from __future__ import annotations

import hmac
import logging
import os
import stat

LOG = logging.getLogger(__name__)
READ_METHODS = frozenset({"GET", "HEAD"})


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

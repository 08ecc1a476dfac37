"""The REST API's HTTP client (stdlib only): the one overlayctl (controller/cli/main.py) and the lab
(lab/controller.py) both use.

JSON in and out, an optional bearer token; over https:// the API's certificate is verified
against `ca_file` when given (its CA, not its name: as Open vSwitch checks a controller), else
against the system's CAs. An HTTP error status raises ApiError with the decoded
body; a connection that fails raises what urllib raised (URLError, an OSError) unchanged, so the
caller decides what an unreachable controller means (overlayctl: exit 3; the lab: not ready yet).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    """The API answered with a 4xx or 5xx: `status` and its decoded `body`."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        """The API's own words: its "error" (or a failed probe's "reason"), else the body as text."""
        if isinstance(self.body, dict):
            for key in ("error", "reason"):
                if key in self.body:
                    return str(self.body[key])
        if isinstance(self.body, str):
            return self.body.strip() or "(no message)"
        return "(no message)" if self.body is None else json.dumps(self.body)


def _decode(raw: bytes) -> Any:
    """An error body: JSON when it is JSON (the API's errors are), else its text."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


class Client:
    """Requests against the API at `base` (e.g. http://127.0.0.1:8080); returns the decoded body."""

    def __init__(self, base: str, token: str | None = None, timeout: float = 10.0, ca_file: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if ca_file:
            self.context = ssl.create_default_context(cafile=ca_file)
            self.context.check_hostname = False  # ovs-pki's certificates name no host: the CA is the check
        self.headers: dict[str, str] = {}  # the last answer's (e.g. X-Overlay-Revision after a write)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:
        req = self._request(method, path, body, content_type, headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout, context=self.context) as resp:
                self.headers = dict(resp.headers.items())
                raw = resp.read()
        except urllib.error.HTTPError as e:
            self.headers = dict(e.headers.items()) if e.headers else {}
            raise ApiError(e.code, _decode(e.read())) from None
        return json.loads(raw) if raw else None

    def open(self, path: str, headers: dict[str, str], timeout: float) -> Any:
        """A GET whose answer is read as it comes (the event stream): the open response."""
        try:
            return urllib.request.urlopen(self._request("GET", path, None, "", headers), timeout=timeout,
                                          context=self.context)
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, _decode(e.read())) from None

    def _request(self, method: str, path: str, body: Any, content_type: str,
                 headers: dict[str, str] | None) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        return req

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

"""etcd v3 for the controller: one client over all configured endpoints, failing over between them.

The client is etcd3gw (OpenStack's): it speaks etcd's gRPC gateway (HTTP/JSON under /v3/) with
requests, which eventlet green-patches, so a call blocks only its own greenthread. A gRPC client
would bring a C extension whose threads eventlet cannot see. etcd3gw talks to one host; `Etcd`
holds one per endpoint and moves on to the next when a member does not answer (refused, timed
out, or answers "unavailable" because it has no leader), so the loss of a member never fails a
call while a quorum is left. When none answers, the call raises EtcdUnavailable.

Keys and values go over the gateway in base64; the helpers here (put, delete, compare ...)
build the transaction operations so that callers deal in str and bytes only.

    etcd = connect(["http://10.0.0.1:2379", "http://10.0.0.2:2379"], timeout=2.0)
    etcd = connect(["https://10.0.0.1:2379"], tls=ClientTls(ca, cert, key))  # etcd --client-cert-auth
    ok, resp = etcd.txn([compare_created(key, 0)], [put(key, b"v")], [get(key)])
    kvs, revision = etcd.range_prefix("/sdn-overlay/")
    for batch in etcd.watch_prefix("/sdn-overlay/", start_revision=revision + 1): ...
    lease = etcd.lease_grant(ttl=2); etcd.lease_keepalive(lease)
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from etcd3gw import exceptions
from etcd3gw.client import Etcd3Client

LOG = logging.getLogger(__name__)
T = TypeVar("T")
API_PATH = "/v3/"  # etcd >= 3.4; Debian 12's etcd-server is 3.4
# Worth asking another member: it did not answer, or answered that it cannot serve right now.
FAILOVER = (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError)
RETRY_PAUSE_S = 0.1  # between two rounds over the members
WATCH_IDLE_S = 30.0  # a silent watch stream is re-opened after this long (from where it stopped)


class EtcdUnavailable(Exception):
    """No configured etcd member answered in time."""


class EtcdError(Exception):
    """etcd answered, but refused the request (a bug on our side or a misconfiguration)."""


class Compacted(Exception):
    """A watch asked for revisions etcd has compacted away: re-list, then watch from there."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revisions up to {compact_revision} were compacted")
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class ClientTls:
    """For https:// endpoints: the CA that signs etcd's server certificates, and the certificate and
    key this client shows (etcd --client-cert-auth); without them etcd sees no client certificate."""

    ca_certificate: str | None
    certificate: str | None = None
    private_key: str | None = None


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True)
class Event:
    """A change under a watched prefix: a put (value) or a delete (value None)."""

    key: str
    value: bytes | None
    revision: int


# ---- request parts (base64 on the wire) ---------------------------------------------------

def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def prefix_end(prefix: str) -> str:
    """The end of the key range that holds exactly the keys starting with prefix."""
    raw = prefix.encode()
    return (raw[:-1] + bytes([raw[-1] + 1])).decode("latin-1")


def put(key: str, value: bytes, lease: int | None = None) -> dict:
    req: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease is not None:
        req["lease"] = lease
    return {"request_put": req}


def delete(key: str) -> dict:
    return {"request_delete_range": {"key": _b64(key)}}


def get(key: str) -> dict:
    return {"request_range": {"key": _b64(key)}}


def get_prefix(prefix: str) -> dict:
    return {"request_range": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}}


def compare_modified(key: str, revision: int) -> dict:
    """The key was last written at `revision` (0: it does not exist)."""
    return {"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": revision}


def compare_created(key: str, revision: int) -> dict:
    """The key was created at `revision` (0: it does not exist)."""
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": revision}


def compare_value(key: str, value: bytes) -> dict:
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


def kv_from(doc: dict) -> KV:
    return KV(base64.b64decode(doc["key"]).decode("latin-1"), base64.b64decode(doc.get("value", "")),
              int(doc.get("mod_revision", 0)), int(doc.get("create_revision", 0)))


def range_kvs(resp: dict) -> list[KV]:
    """The key-values of a txn's response_range (e.g. of a get() in its failure branch)."""
    return [kv_from(kv) for r in resp.get("responses", []) for kv in r.get("response_range", {}).get("kvs", [])]


# ---- the client ---------------------------------------------------------------------------

class Etcd:
    """etcd3gw over several endpoints.

    `timeout` bounds one request to one member. A call asks the members in turn, from the one
    that answered last, and goes round again while one of them times out or has no leader (an
    election after the leader died takes a second or two, and etcd drops the requests caught in
    it), until `retry_for` seconds have passed. When every member refuses the connection, no
    etcd is running there: the call fails at once.
    """

    def __init__(self, endpoints: list[str], timeout: float = 1.0, retry_for: float = 5.0,
                 tls: ClientTls | None = None) -> None:
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.timeout, self.retry_for = timeout, retry_for
        self.clients = [_client(url, timeout, tls) for url in self.endpoints]
        self.current = 0  # the member that answered last: asked first

    def call(self, fn: Callable[[Etcd3Client], T]) -> T:
        """fn(client) on the current member, then on the others (see the class) until one answers."""
        give_up = time.monotonic() + self.retry_for
        first, n = self.current, len(self.clients)
        errors: dict[str, str] = {}
        refused_all = True  # in this round so far
        for step in itertools.count():
            i = (first + step) % n
            try:
                result = fn(self.clients[i])
            except FAILOVER as e:
                errors[self.endpoints[i]] = _reason(e)
                refused = _refused(e)
            except exceptions.Etcd3Exception as e:
                raise EtcdError(f"{self.endpoints[i]}: {_reason(e)}") from e
            else:
                if i != self.current:
                    LOG.warning("etcd: now using %s (%s)", self.endpoints[i],
                                "; ".join(f"{u}: {r}" for u, r in errors.items()))
                    self.current = i
                return result
            refused_all = refused_all and refused
            if step % n == n - 1:  # a whole round without an answer
                if refused_all or time.monotonic() >= give_up:
                    break
                refused_all = True
                time.sleep(RETRY_PAUSE_S)
        raise EtcdUnavailable("no etcd member answered: " + "; ".join(f"{u}: {r}" for u, r in errors.items()))

    def post(self, path: str, body: dict) -> dict:
        """POST a gateway request (path under /v3/, e.g. 'kv/txn') to the first member that answers."""
        return self.call(lambda c: c.post(c.get_url(path), data=json.dumps(body)))

    def txn(self, compare: list[dict], success: list[dict], failure: list[dict] | None = None
            ) -> tuple[bool, dict]:
        """One transaction: (whether the compares held, the whole response with its header)."""
        resp = self.post("kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(resp.get("succeeded", False)), resp

    def range_prefix(self, prefix: str) -> tuple[list[KV], int]:
        """Every key under prefix (a linearizable read) and the store's revision it was read at."""
        resp = self.post("kv/range", get_prefix(prefix)["request_range"])
        return [kv_from(kv) for kv in resp.get("kvs", [])], int(resp["header"]["revision"])

    def get(self, key: str) -> KV | None:
        kvs = self.post("kv/range", {"key": _b64(key)}).get("kvs", [])
        return kv_from(kvs[0]) if kvs else None

    def lease_grant(self, ttl: int) -> int:
        return int(self.post("lease/grant", {"TTL": ttl, "ID": 0})["ID"])

    def lease_keepalive(self, lease: int) -> int:
        """Refresh a lease; its remaining TTL (0 or less: it had expired)."""
        return int(self.post("lease/keepalive", {"ID": lease}).get("result", {}).get("TTL", 0))

    def lease_revoke(self, lease: int) -> None:
        self.post("kv/lease/revoke", {"ID": lease})

    def status(self) -> dict:
        return self.post("maintenance/status", {})

    def watch_prefix(self, prefix: str, start_revision: int, idle: float = WATCH_IDLE_S
                     ) -> Iterator[tuple[int, list[Event]]]:
        """(revision, events) for every change under prefix from start_revision on, in order.

        The events of one transaction come in one item. The stream runs on one member; when it
        ends (the member died) or stays silent for `idle` seconds, the iterator returns, and the
        caller opens a new one from the last revision it saw + 1: nothing is missed. Raises
        EtcdUnavailable when no member takes the watch, Compacted when start_revision is gone.
        """
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": start_revision}}
        resp = self.call(lambda c: _open_stream(c, body, idle))
        try:
            yield from _read_stream(resp)
        except (requests.RequestException, OSError) as e:  # the member went away, or it stayed idle
            LOG.log(logging.DEBUG if "timed out" in str(e) else logging.INFO, "etcd watch on %s ended: %s",
                    resp.url, e)
        finally:
            resp.close()

    def close(self) -> None:
        for c in self.clients:
            c.session.close()


def connect(endpoints: list[str], timeout: float = 1.0, retry_for: float = 5.0, tls: ClientTls | None = None) -> Etcd:
    """The client the controller uses: every endpoint, `timeout` seconds per request per member,
    members asked again for up to `retry_for` seconds while they time out or have no leader;
    https:// endpoints with `tls`."""
    return Etcd(endpoints, timeout, retry_for, tls)


def parse_endpoints(text: str) -> list[str]:
    """'http://a:2379, http://b:2379' -> the URLs; a malformed one is a ValueError that names it."""
    urls = [u.strip() for u in text.split(",") if u.strip()]
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError(f"etcd endpoint {url!r} is not http(s)://host:port")
    if not urls:
        raise ValueError("no etcd endpoints given")
    return urls


def _client(url: str, timeout: float, tls: ClientTls | None = None) -> Etcd3Client:
    parts = urllib.parse.urlsplit(url)
    session = None
    if parts.scheme == "https" and tls is not None:
        session = requests.Session()
        session.verify = tls.ca_certificate or True
        if tls.certificate and tls.private_key:
            session.cert = (tls.certificate, tls.private_key)
        session.trust_env = False  # else $REQUESTS_CA_BUNDLE silently replaces our CA (requests #3829)
    return Etcd3Client(host=parts.hostname or "", port=parts.port or 2379, protocol=parts.scheme,
                       timeout=timeout, api_path=API_PATH, session=session)


def _refused(e: exceptions.Etcd3Exception) -> bool:
    """The member's port is closed (etcd3gw keeps the requests error as the context)."""
    cause = e.__context__
    return isinstance(cause, requests.exceptions.ConnectionError) and not isinstance(cause, requests.exceptions.Timeout)


def _reason(e: exceptions.Etcd3Exception) -> str:
    """What went wrong with one member, in a few words for a log line or a 503's message."""
    cause = e.__context__
    if isinstance(cause, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(cause, requests.exceptions.ConnectionError):
        return "connection refused" if _refused(e) else "connection lost"
    text = str(e.args[0]) if e.args else ""
    try:
        text = json.loads(text).get("error", text)  # the gateway's {"error": "etcdserver: ...", ...}
    except (ValueError, AttributeError):
        pass
    return (text or type(e).__name__)[:200]


def _open_stream(c: Etcd3Client, body: dict, idle: float) -> requests.Response:
    try:
        resp = c.session.post(c.get_url("watch"), data=json.dumps(body), stream=True, timeout=(c.timeout, idle))
    except requests.exceptions.Timeout as e:
        raise exceptions.ConnectionTimeoutError(str(e)) from e
    except requests.exceptions.ConnectionError as e:
        raise exceptions.ConnectionFailedError(str(e)) from e
    if resp.status_code != 200:
        resp.close()
        raise exceptions.ConnectionFailedError(f"watch answered {resp.status_code}")
    return resp


def _read_stream(resp: requests.Response) -> Iterator[tuple[int, list[Event]]]:
    for line in resp.iter_lines(chunk_size=None):
        if not line.strip():
            continue
        doc = json.loads(line)
        if "error" in doc:
            raise EtcdError(f"watch: {doc['error']}")
        result = doc.get("result", {})
        if result.get("canceled"):
            compact = int(result.get("compact_revision", 0))
            if compact:
                raise Compacted(compact)
            raise EtcdError(f"watch canceled: {result.get('cancel_reason', '')}")
        if result.get("created"):  # its header is the current revision, not how far events came
            continue
        events = [_event(e) for e in result.get("events", [])]
        if not events:  # a progress notification: every change up to its revision was sent
            if "header" in result:
                yield int(result["header"]["revision"]), []
            continue
        # A response carries whole revisions, in order; hand them out one revision at a time.
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or events[i].revision != events[start].revision:
                yield events[start].revision, events[start:i]
                start = i


def _event(doc: dict) -> Event:
    kv = doc["kv"]
    key = base64.b64decode(kv["key"]).decode("latin-1")
    if doc.get("type") == "DELETE":
        return Event(key, None, int(kv["mod_revision"]))
    return Event(key, base64.b64decode(kv.get("value", "")), int(kv["mod_revision"]))


def backoff(attempt: int) -> float:
    """Seconds to wait before the attempt-th retry of a lost watch (0.1 s doubling up to 2 s)."""
    return min(2.0, 0.1 * (2 ** min(attempt, 5)))

"""The election's thin shell: carries out controller/election.py's actions against etcd v3.

It runs as one green thread (etcd3gw's HTTP calls yield to the event loop under eventlet),
steps every TTL/6, tries the endpoints in turn when one does not answer, and hands Lead and
Follow to the app (which switches the OpenFlow roles on its event loop).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import Etcd3Exception
from os_ken.lib import hub

from controller.election import Action, Campaign, Election, Follow, Grant, Holder, KeepAlive, Lead, Resign

LOG = logging.getLogger(__name__)
ELECTION_KEY = "/sdn-overlay/leader"


def parse_endpoints(endpoints: list[str]) -> list[tuple[str, int]]:
    """'http://10.0.0.1:2379' or '10.0.0.1:2379' -> (host, port)."""
    out = []
    for ep in endpoints:
        u = urlsplit(ep if "://" in ep else f"http://{ep}")
        if not u.hostname:
            raise ValueError(f"not an etcd endpoint: {ep!r}")
        out.append((u.hostname, u.port or 2379))
    return out


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Endpoints:
    """etcd3gw clients for every endpoint; a call goes to the one that last answered, then the others."""

    def __init__(self, endpoints: list[str], timeout: float) -> None:
        self.clients = [Etcd3Client(host, port, timeout=timeout, api_path="/v3/")
                        for host, port in parse_endpoints(endpoints)]
        self.current = 0

    def call(self, fn: Callable[[Etcd3Client], Any]) -> Any:
        last: Exception | None = None
        for i in range(len(self.clients)):
            k = (self.current + i) % len(self.clients)
            try:
                result = fn(self.clients[k])
            except (Etcd3Exception, OSError) as e:  # refused, timed out, no quorum (5xx)
                last = e
                continue
            self.current = k
            return result
        raise ConnectionError(f"no etcd endpoint answered: {last}")


class EtcdElection:
    def __init__(self, endpoints: list[str], me: str, ttl: int, on_change: Callable[[Action], None],
                 key: str = ELECTION_KEY) -> None:
        self.election = Election(me, ttl)
        self.etcd = Endpoints(endpoints, timeout=max(0.2, ttl / 3))
        self.key = key
        self.on_change = on_change
        self.queued: list[Action] = []
        self.step_s = ttl / 6

    def run(self) -> None:
        while True:
            actions = self.queued + self.election.tick(time.monotonic())
            self.queued = []
            self._carry_out(actions)
            hub.sleep(self.step_s)

    def stale(self, generation: int | None) -> None:
        """A switch refused our MASTER request (called on the app's event loop)."""
        actions = self.election.stale(generation, time.monotonic())
        self.queued += [a for a in actions if not isinstance(a, Follow | Lead)]
        for a in actions:
            if isinstance(a, Follow | Lead):
                self.on_change(a)

    def _carry_out(self, actions: list[Action]) -> None:
        while actions:
            action = actions.pop(0)
            if isinstance(action, Lead | Follow):
                self.on_change(action)
                continue
            sent = time.monotonic()
            try:
                actions += self._call(action, sent)
            except ConnectionError as e:
                if self.election.etcd_ok:
                    LOG.warning("etcd unreachable (%s): %s", type(action).__name__, e)
                actions += self.election.etcd_failed(sent)

    def _call(self, action: Action, sent: float) -> list[Action]:
        e = self.election
        if isinstance(action, Grant):
            got = self.etcd.call(lambda c: c.post(c.get_url("/lease/grant"), json={"TTL": action.ttl, "ID": 0}))
            return e.granted(int(got["ID"]), float(got.get("TTL", action.ttl)), sent)
        if isinstance(action, KeepAlive):
            got = self.etcd.call(lambda c: c.post(c.get_url("/lease/keepalive"), json={"ID": action.lease}))
            return e.kept_alive(action.lease, float(got.get("result", {}).get("TTL", -1)), sent)
        if isinstance(action, Campaign):
            got = self.etcd.call(lambda c: c.transaction(self._campaign_txn(action.lease)))
            return e.campaigned(action.lease, self._holder(got, action.lease), time.monotonic())
        if isinstance(action, Resign):  # the key goes with the lease
            self.etcd.call(lambda c: c.post(c.get_url("/kv/lease/revoke"), json={"ID": action.lease}))
            return []
        raise TypeError(action)

    def _campaign_txn(self, lease: int) -> dict:
        key = _b64(self.key)
        return {"compare": [{"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
                "success": [{"request_put": {"key": key, "value": _b64(self.election.me), "lease": lease}}],
                "failure": [{"request_range": {"key": key}}]}

    def _holder(self, txn: dict, lease: int) -> Holder | None:
        if txn.get("succeeded"):  # we created it: its create revision is this transaction's revision
            return Holder(self.election.me, lease, int(txn["header"]["revision"]))
        kvs = txn.get("responses", [{}])[0].get("response_range", {}).get("kvs", [])
        if not kvs:
            return None
        kv = kvs[0]
        return Holder(base64.b64decode(kv.get("value", "")).decode(errors="replace"), int(kv.get("lease", 0)),
                      int(kv["create_revision"]))

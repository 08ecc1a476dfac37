"""The election's thin shell: carries out controller/ha/election.py's actions against etcd v3.

It runs as one green thread (etcd3gw's HTTP calls yield to the event loop under eventlet),
steps every TTL/6, asks the members in turn (controller/ha/etcd.py) within half the TTL each, and
hands Lead and Follow to the app (which switches the OpenFlow roles on its event loop). The
election key's value is "<instance name> <lease ID>": whose it is, and under which lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from os_ken.lib import hub

from controller.ha import etcd
from controller.ha.election import Action, Campaign, Election, Follow, Grant, Holder, KeepAlive, Lead, Resign

LOG = logging.getLogger(__name__)
ELECTION_KEY = "leader"  # under [etcd] prefix


class EtcdElection:
    def __init__(self, endpoints: list[str], me: str, ttl: int, on_change: Callable[[Action], None],
                 prefix: str = "/sdn-overlay/", tls: etcd.ClientTls | None = None) -> None:
        self.election = Election(me, ttl)
        # One round over the members, each within half the TTL (a loaded etcd may take a few hundred
        # ms): the next step tries again. The leader's writes stop on its own clock meanwhile.
        self.etcd = etcd.connect(endpoints, timeout=max(0.2, ttl / 2), retry_for=0.0, tls=tls)
        self.key = prefix + ELECTION_KEY
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
            except (etcd.EtcdUnavailable, etcd.EtcdError) as e:
                if self.election.etcd_ok:
                    LOG.warning("etcd unreachable (%s): %s", type(action).__name__, e)
                actions += self.election.etcd_failed(sent)

    def _call(self, action: Action, sent: float) -> list[Action]:
        e = self.election
        if isinstance(action, Grant):  # etcd may grant more than asked (its minimum TTL)
            got = self.etcd.post("lease/grant", {"TTL": action.ttl, "ID": 0})
            return e.granted(int(got["ID"]), float(got.get("TTL", action.ttl)), sent)
        if isinstance(action, KeepAlive):
            return e.kept_alive(action.lease, float(self.etcd.lease_keepalive(action.lease)), sent)
        if isinstance(action, Campaign):
            value = f"{e.me} {action.lease}".encode()
            won, resp = self.etcd.txn([etcd.compare_created(self.key, 0)], [etcd.put(self.key, value, action.lease)],
                                      [etcd.get(self.key)])
            return e.campaigned(action.lease, self._holder(won, resp, action.lease), time.monotonic())
        if isinstance(action, Resign):  # the key goes with the lease
            self.etcd.lease_revoke(action.lease)
            return []
        raise TypeError(action)

    def _holder(self, won: bool, resp: dict, lease: int) -> Holder | None:
        if won:  # we created it: its create revision is this transaction's revision
            return Holder(self.election.me, lease, int(resp["header"]["revision"]))
        kvs = etcd.range_kvs(resp)
        if not kvs:
            return None
        name, _, held_by = kvs[0].value.decode(errors="replace").rpartition(" ")
        return Holder(name, int(held_by) if held_by.isdigit() else 0, kvs[0].create_revision)

"""Several controller instances, one leader: the OpenFlow role each switch should give us, what
each switch accepted, and how a follower takes over.

The leader (controller/ha/election.py) is MASTER on every switch with its generation ID; the
others are SLAVE. Only the leader sends flow, group and meter changes and OVSDB transactions;
a follower reads (switch read-back, counters) and follows the tenants and the hosts' OVSDB, so
that taking over is what a restart does, in-process: a fresh core from the tenants and host
views it already has, each switch read back, only the difference sent (controller/core/core.py).

Single instance ([overlay] store = sqlite): always the leader, and no role request is ever sent, so
switches keep the default EQUAL role exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from controller.core.core import Core
from controller.model.ops import Op, ReadSwitch
from controller.model.state import HostView, Peer, Tenant

MASTER, SLAVE = "master", "slave"


@dataclass
class SwitchRole:
    asked: str
    generation: int
    asked_at: float
    accepted: str | None = None
    accepted_at: float | None = None


def read_only(op: Op) -> bool:
    """What a follower may send: reading a switch back. Everything else is the leader's."""
    return isinstance(op, ReadSwitch)


class Roles:
    def __init__(self, enabled: bool, instance: str = "") -> None:
        self.enabled = enabled
        self.instance = instance
        self.leading = not enabled  # one instance alone leads from the start
        self.leader: str | None = instance if not enabled else None
        self.generation = 0
        self.since: float | None = None  # when this instance last became leader (wall clock)
        self.switches: dict[int, SwitchRole] = {}

    @property
    def wanted(self) -> str:
        return MASTER if self.leading else SLAVE

    def lead(self, generation: int, now: float) -> None:
        self.leading, self.leader, self.since = True, self.instance, now
        self.generation = max(self.generation, generation)

    def follow(self, leader: str | None, generation: int) -> None:
        self.leading, self.leader = False, leader
        self.generation = max(self.generation, generation)

    def ask(self, dpid: int, now: float) -> tuple[str, int] | None:
        """The role request to send this switch now (None: single instance, send none)."""
        if not self.enabled:
            return None
        self.switches[dpid] = SwitchRole(self.wanted, self.generation, now)
        return self.wanted, self.generation

    def replied(self, dpid: int, role: str, generation: int, now: float) -> None:
        sw = self.switches.get(dpid)
        if sw is not None:
            sw.accepted, sw.accepted_at = role, now
        self.generation = max(self.generation, generation) if role == MASTER else self.generation

    def gone(self, dpid: int) -> None:
        self.switches.pop(dpid, None)

    def refused(self, dpid: int) -> bool:
        """A switch refused our role request or a change (it has a newer master): step down?"""
        sw = self.switches.get(dpid)
        if sw is not None:
            sw.accepted, sw.accepted_at = None, None
        return self.leading

    def status(self, now: float, election: dict | None = None) -> dict:
        doc: dict[str, Any] = {"ha": self.enabled, "instance": self.instance,
                               "role": "leader" if self.leading else "follower",
                               "leader": self.leader, "generation": self.generation, "leader_since": self.since}
        if election:
            doc["election"] = election
        doc["switches"] = {f"{dpid:016x}": {"asked": sw.asked, "generation": sw.generation,
                                            "accepted": sw.accepted, "accepted_at": sw.accepted_at}
                           for dpid, sw in sorted(self.switches.items())}
        return doc


def promoted(old: Core, tenants: Iterable[Tenant], views: Iterable[tuple[HostView, Peer | None]], now: float,
             recovery_s: float) -> tuple[Core, list[Op]]:
    """The core a new leader runs: what a restart builds, from what the follower already has.

    Tenants as the store's watch kept them, which hosts may join (the same policy), hosts from their
    OVSDB views (and where each came from), and every connected switch read back before anything
    is changed on it; learned endpoints come from the switches (their own entries), as after a
    restart. Counters and refused claims carry on.
    """
    core = Core(old.settings, tenants, canon=old.canon, policy=old.policy, cookie_of=old.cookie_of)
    core.eager = False
    core.recovering, core.recover_until = True, now + recovery_s
    core.counters.update(old.counters)
    core.refusals.carry(old.refusals)
    core.revision = old.revision  # the tenants are the same: so is their revision
    core.role_packets = dict(old.role_packets)
    ops: list[Op] = []
    for dpid in sorted(old.datapaths):
        ops += core.datapath_up(dpid, old.dp_peers.get(dpid))
    for view, peer in views:
        ops += core.host_view(view, now, peer)
    return core, ops


class RoleMetrics:
    """overlay_leader and overlay_leader_generation, read at scrape time."""

    def __init__(self, roles: Callable[[], Roles]) -> None:
        self.roles = roles

    def collect(self) -> Iterator[Metric]:
        r = self.roles()
        # Not `instance`: Prometheus sets that on every series from the target's address, and a scraped
        # label of that name is renamed exported_instance (docs/operator/metrics.md).
        g = GaugeMetricFamily("overlay_leader", "1 if this instance leads (OpenFlow MASTER, the only writer), else 0",
                              labels=["instance_name"])
        g.add_metric([r.instance], 1.0 if r.leading else 0.0)
        yield g
        yield GaugeMetricFamily("overlay_leader_generation", "the newest leader generation ID seen (etcd revision)",
                                value=float(r.generation))

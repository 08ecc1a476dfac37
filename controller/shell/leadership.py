"""Keeping the roles: which instance programs the switches (controller/ha/roles.py), the OpenFlow
role each switch is asked for and what it answered, and what a change of leader does to the core.

Single instance ([overlay] store = sqlite): always the leader, no election, no role request.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from controller.core.core import Core
from controller.ha import roles as ha
from controller.ha.election import Action, Lead
from controller.model.ops import Op
from controller.model.state import HostView, Peer
from controller.southbound import ofmsg

LOG = logging.getLogger("overlay")


class Leadership:
    def __init__(self, roles: ha.Roles, election: Any = None) -> None:
        self.roles = roles
        self.election = election  # an EtcdElection (controller/ha/election_etcd.py), or None

    @classmethod
    def from_conf(cls, conf: Any, on_action: Callable[[Action], None]) -> Leadership:
        """Several instances share etcd: elect a leader among them; else lead alone."""
        e = conf.etcd
        roles = ha.Roles(conf.overlay.store == "etcd", e.instance_name or socket.gethostname())
        if not roles.enabled:
            return cls(roles)
        from controller.ha.election_etcd import EtcdElection  # only with etcd: its client
        from controller.ha.etcd import parse_endpoints
        from controller.shell.config import etcd_tls

        return cls(roles, EtcdElection(parse_endpoints(e.endpoints), roles.instance, e.lease_ttl, on_action, e.prefix,
                                       etcd_tls(conf)))

    @property
    def leading(self) -> bool:
        return self.roles.leading

    def metrics(self) -> ha.RoleMetrics:
        return ha.RoleMetrics(lambda: self.roles)

    def may_write(self) -> bool:
        return self.roles.leading and (self.election is None or self.election.election.may_lead(time.monotonic()))

    def writable(self, ops: list[Op]) -> list[Op]:
        """What this instance may send now: everything when it leads, else only read-backs."""
        return ops if self.may_write() else [op for op in ops if ha.read_only(op)]

    def status(self, now: float) -> dict:
        election = self.election.election.status(time.monotonic()) if self.election is not None else None
        return self.roles.status(now, election)

    def ask(self, dp: Any, now: float) -> None:
        """The role request a switch gets before anything else on its connection (none when alone)."""
        want = self.roles.ask(dp.id, now)
        if want is not None:
            dp.send_msg(ofmsg.role_request(*want))

    def replied(self, dpid: int, role_code: int, generation: int, now: float) -> None:
        role = ofmsg.ROLE_NAMES.get(role_code, str(role_code))
        self.roles.replied(dpid, role, generation, now)
        LOG.info("switch %016x: role %s accepted (generation %d)", dpid, role, generation)

    def refused(self, dpid: int, core: Core) -> None:
        """The switch says another controller is master with a newer generation: step down."""
        core.counters["role_refused"] += 1
        if self.roles.refused(dpid) and self.election is not None:
            LOG.warning("switch %016x refused us as master: another instance leads; stepping down", dpid)
            self.election.stale(None)

    def change(self, action: Action, core: Core, views: Iterable[tuple[HostView, Peer]], switches: int, now: float,
               recovery_s: float) -> tuple[Core, list[Op]]:
        """The election decided: the core to run from now on, and its operations. A new leader
        starts a fresh core from what it follows (ha.promoted); a follower keeps its core, passive."""
        if isinstance(action, Lead):
            LOG.warning("leader now, generation %d: MASTER on %d switches, reading them back", action.generation,
                        switches)
            self.roles.lead(action.generation, now)
            core.counters["leader_elected"] += 1
            # The tenants as the store's watch kept them here: a takeover needs no etcd read.
            return ha.promoted(core, list(core.tenants.values()), list(views), now, recovery_s)
        was = self.roles.leading
        self.roles.follow(action.leader, action.generation)
        core.passive = True
        if was:
            LOG.warning("not the leader any more (leader: %s, generation %d): SLAVE on every switch",
                        action.leader or "unknown", action.generation)
        return core, []

"""The core's events of trust: which hosts may join (admission.py), who may claim a host's name or
its br1 (identity.py), and the rules of its br0 ports (controller/pipeline/port_security.py).

A part of Core (controller/core/core.py), kept here so that each file stays one concern: Core
inherits these methods; they read and change its state as its own methods do.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from controller.core import identity
from controller.core.admission import HostPolicy, PendingHost
from controller.core.index import Index
from controller.core.marks import Marks
from controller.core.switch_state import Installed, SwitchDump
from controller.core.tunnel_ops import TunnelBook
from controller.model import events as ev
from controller.model.ops import DeletePorts, Disconnect, Op, Wipe
from controller.model.state import Host, HostView, Peer, PortRule
from controller.pipeline import port_security
from controller.pipeline.settings import Settings

LOG = logging.getLogger("controller.core.core")


class Trust:
    """Core's trust events. The state named below is Core's (set up in Core.__init__)."""

    settings: Settings
    ix: Index
    policy: HostPolicy  # [overlay] admission, the operator's decisions, the port rules
    waiting: dict[str, PendingHost]  # connected, not admitted: never in the index
    refusals: identity.Refusals
    datapaths: set[int]
    dp_peers: dict[int, Peer | None]
    installed: dict[int, Installed]
    dumps: dict[int, SwitchDump]
    tunnels: TunnelBook
    marks: Marks
    events: list[ev.Event]  # what changed, for GET /v1/events (controller/model/events.py)

    # Core's own, used here
    def host_view(self, view: HostView, now: float, peer: Peer | None = None) -> list[Op]:
        raise NotImplementedError

    def datapath_down(self, dpid: int, now: float = 0.0) -> list[Op]:
        raise NotImplementedError

    def _withdraw(self, host: Host, why: str) -> None:
        raise NotImplementedError

    def _tunnel_ops(self, ops: list[Op]) -> list[Op]:
        raise NotImplementedError

    def _flush(self) -> list[Op]:
        raise NotImplementedError

    def guard(self, host: Host, vlan: int) -> port_security.Guard | None:
        """Port security in a VLAN of a host (None: no br0 port of it there has a rule)."""
        rules = self.policy.rules_of(host.id)
        return port_security.guard(rules, host.view, vlan) if rules else None

    def claim_datapath(self, dpid: int, peer: Peer, now: float) -> str | None:
        """May this connection be the br1 with this datapath ID? Why not (identity.py), else None."""
        host = self.ix.host_of_dpid(dpid)
        reason = identity.datapath_refusal(peer, dpid in self.datapaths, self._holder(host) if host else None,
                                           self.policy.mode.needs_certificate, self.settings.host_grace, now)
        if reason is not None:
            self.refusals.add(host.id if host else identity.dpid_identity(dpid), peer, identity.OPENFLOW, reason, now)
        return reason

    def claim_ovsdb(self, system_id: str, peer: Peer, live: bool, now: float) -> str | None:
        """May this OVSDB connection be host system_id (`live`: another open one is)? Why not, else None."""
        host = self.ix.hosts.get(system_id)
        holder = self._holder(host) if host is not None else self._waiting_holder(system_id)
        reason = identity.ovsdb_refusal(peer, system_id, live, holder, self.policy.mode.needs_certificate,
                                        self.settings.host_grace, now)
        if reason is not None:
            self.refusals.add(system_id, peer, identity.OVSDB, reason, now)
        return reason

    def _holder(self, host: Host) -> identity.Holder:
        up = host.ovsdb_connected or host.view.datapath_id in self.datapaths
        return identity.Holder(host.id, host.peer, up, host.lost_since)

    def _waiting_holder(self, host_id: str) -> identity.Holder | None:
        """A host waiting for admission holds its name while its OVSDB connection is up (it is listed)."""
        waiting = self.waiting.get(host_id)
        return identity.Holder(host_id, waiting.peer, True, None) if waiting is not None else None

    def _datapath_claimed(self, view: HostView, peer: Peer | None, now: float) -> HostView:
        """A view naming a br1 datapath ID another host holds (identity.DATAPATH_TAKEN) does not get it."""
        dpid = view.datapath_id
        owner = self.ix.host_of_dpid(dpid) if dpid is not None else None
        if owner is None or owner.id == view.system_id or not self._holder(owner).held(now, self.settings.host_grace):
            return view
        problem = f"br1's datapath ID {dpid:016x} is host {owner.id}'s"
        had = self.ix.hosts.get(view.system_id)
        if had is None or problem not in had.view.problems:
            self.refusals.add(view.system_id, peer or Peer("?"), identity.OVSDB, identity.DATAPATH_TAKEN, now)
        return replace(view, datapath_id=None, problems=(*view.problems, problem))

    def _bound(self, host: Host, now: float) -> list[Op]:
        """With certificates, the br1 connected under the host's datapath ID must hold its certificate:
        one that connected first with another is closed (identity.WRONG_CERTIFICATE)."""
        dpid = host.view.datapath_id
        if dpid is None or dpid not in self.datapaths or identity.bound(self.dp_peers.get(dpid), host.id,
                                                                        self.policy.mode.needs_certificate):
            return []
        peer = self.dp_peers.get(dpid) or Peer("?")
        self.refusals.add(host.id, peer, identity.OPENFLOW, identity.WRONG_CERTIFICATE, now)
        self.datapath_down(dpid, now)
        return [Disconnect(dpid, f"br1 of {host.id} connected with the certificate of {peer.cn!r}")]

    def _guards_changed(self, old: Host, host: Host) -> None:
        """A ruled host's br0 ports or their MACs changed: the guarded VLANs' tenants again."""
        if not self.policy.rules_of(host.id) or (old.view.port_vlans, old.view.attached) == (
                host.view.port_vlans, host.view.attached):
            return
        for vlan in {tag for _, tag in old.view.port_vlans + host.view.port_vlans}:
            tenant = self.ix.tenant_on(host.id, vlan)
            if tenant is not None:
                self.marks.parts(host.id, {tenant.vni})

    def _wait(self, view: HostView, peer: Peer | None, now: float) -> list[Op]:
        """Not admitted: listed with its view, never programmed, never anyone's peer."""
        ops = self._take_out(self.ix.hosts[view.system_id], now) if view.system_id in self.ix.hosts else []
        was = self.waiting.get(view.system_id)
        if was is None:
            why = self.policy.status(view.system_id)[1]
            LOG.warning("host %s (%s) is not admitted: %s", view.system_id, peer.address if peer else "?", why)
            self.events.append(ev.HostRefused(view.system_id, f"waiting for admission: {why}"))
        self.waiting[view.system_id] = PendingHost(view, peer or (was.peer if was else None),
                                                   was.since if was else now)
        return ops

    def decide(self, host_id: str, admitted: bool | None, now: float) -> list[Op]:
        """An operator admitted (True) or revoked (False) a host, or their decision went (None)."""
        if admitted is None:
            self.policy.decisions.pop(host_id, None)
        else:
            self.policy.decisions[host_id] = admitted
        return self.reconsider(host_id, now)

    def reconsider(self, host_id: str, now: float) -> list[Op]:
        """The operator's decision about a host changed (self.policy): a pending host it admits joins
        as a new one would; an admitted host it revokes is taken out."""
        admitted = self.policy.admitted(host_id)
        waiting = self.waiting.get(host_id)
        if admitted and waiting is not None:
            LOG.warning("host %s admitted (%s)", host_id, self.policy.status(host_id)[1])
            del self.waiting[host_id]
            return self.host_view(waiting.view, now, waiting.peer)
        host = self.ix.hosts.get(host_id)
        if not admitted and host is not None:
            LOG.warning("host %s revoked: its endpoints withdrawn, its switch wiped, the tunnels toward it removed",
                        host_id)
            return self._take_out(host, now)
        return []

    def _take_out(self, host: Host, now: float) -> list[Op]:
        """A revoked host: out of the index (as forget_host), its switch wiped and its own tunnel ports
        removed; still connected, it waits in pending."""
        self.events.append(ev.HostLeft(host.id, "its admission was revoked"))
        self._withdraw(host, "its host's admission was revoked")
        view, ops = host.view, []
        if host.ovsdb_connected:
            self.waiting[host.id] = PendingHost(view, host.peer, now)
        dpid = view.datapath_id
        if dpid is not None and dpid in self.installed:
            del self.installed[dpid]
            self.dumps[dpid] = SwitchDump()  # known empty: programmed in full if admitted again
            ops.append(Wipe(dpid))
        own = tuple(sorted(p.port_uuid for p in view.tunnels if p.managed and p.port_uuid))
        if own and host.ovsdb_connected and view.bridge_uuid:
            ops.append(DeletePorts(host.id, view.bridge_uuid, own, "revoked: its tunnel ports go"))
        ops += self._tunnel_ops(self.tunnels.ops(self.settings, now, list(self.ix.hosts.values())))
        return ops + self._flush()

    def put_port_rule(self, rule: PortRule) -> list[Op]:
        """A br0 port's allowed sources set (pipeline/port_security.py): its VLAN's flows there again."""
        self.policy.put_rule(rule)
        return self._port_rule_changed(rule.host, rule.port)

    def drop_port_rule(self, host_id: str, port: str) -> list[Op]:
        self.policy.drop_rule(host_id, port)
        return self._port_rule_changed(host_id, port)

    def _port_rule_changed(self, host_id: str, port: str) -> list[Op]:
        host = self.ix.hosts.get(host_id)
        vlan = dict(host.view.port_vlans).get(port) if host is not None else None
        tenant = self.ix.tenant_on(host_id, vlan) if vlan is not None else None
        if tenant is not None:
            self.marks.parts(host_id, {tenant.vni})
        return self._flush()

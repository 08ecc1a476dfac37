"""Events in, operations out: the controller's decisions, in plain Python.

Each event updates the indexed state (index.py) and marks what it changed as dirty: a partition
(parts.py: BASE, a tunnel port, a tenant, a learned endpoint) on the hosts where it lives. `drain`
recomputes the dirty partitions (reconcile.py, with controller/pipeline/) and diffs them against
what each switch holds; the diff is the list of operations returned. With `eager` (the default, for
tests) every event drains at once; the app turns it off and drains in slices of at most a few tens
of milliseconds, so one big change never stalls the event loop. Nothing here touches a socket or
os-ken.

The contract: events come in as method calls (a switch up or down, a host's OVSDB view, a packet-in,
a flow removed, time passing, a tenant put or deleted); what was learned comes in as typed changes
(changes.py) through one method, `learn`, from packet-ins and BGP EVPN routes alike; operations go
out (controller/model/ops.py). Whoever only reads the state reads `read` (read_model.py).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import replace

from controller.core import identity, reconcile
from controller.core.admission import HostPolicy, PendingHost
from controller.core.counters import fold_role
from controller.core.endpoints import Endpoints
from controller.core.flood_cap import LearningCap
from controller.core.index import Index
from controller.core.learning import Learner
from controller.core.marks import Marks
from controller.core.parts import LEFTOVERS, EpKey, Part
from controller.core.read_model import ReadModel
from controller.core.switch_state import CookieOf, Installed, SwitchDump, recovered_endpoints
from controller.core.tenancy import Tenancy
from controller.core.trust import Trust
from controller.core.tunnel_ops import TunnelBook
from controller.model import events as ev
from controller.model import flows as f
from controller.model.ops import DeletePorts, FlowDelete, Op, ReadSwitch
from controller.model.state import Endpoint, Host, HostView, Peer, Tenant
from controller.pipeline.settings import Settings

LOG = logging.getLogger(__name__)
RECOVERY_OVER = "recovery window over"  # logged when it ends (the e2e tests wait for it)
MAX_PENDING_EVENTS = 100_000


class Core(Endpoints, Tenancy, Trust):
    def __init__(self, settings: Settings, tenants: Iterable[Tenant] = (),
                 canon: Callable[[f.Match], f.Match] | None = None, policy: HostPolicy | None = None,
                 cookie_of: CookieOf | None = None) -> None:
        self.settings = settings
        # Which hosts may join and their ports' rules (controller/core/admission.py): the app's is
        # [overlay] admission and the store's decisions; without one (tests, tools), every host joins.
        self.policy = policy or HostPolicy()
        self.waiting: dict[str, PendingHost] = {}  # connected, not admitted: never in the index
        self.dp_peers: dict[int, Peer | None] = {}  # who each connected switch is (its certificate)
        self.cap = LearningCap(settings.max_endpoints)  # its state, all of it; told of every recount
        self.ix = Index(tenants, recounted=self.cap.recounted)
        self.datapaths: set[int] = set()  # connected over OpenFlow
        self.installed: dict[int, Installed] = {}  # only for switches whose content we know
        self.dumps: dict[int, SwitchDump] = {}  # read back before the host's OVSDB view said whose it is
        self.tunnels = TunnelBook(self.ix)  # tunnel ports asked for, peers still to ask for, forgotten IPs
        self.purges: dict[str, set[int]] = {}  # host -> VLANs whose learn() entries go once its changes are out
        self.counters: Counter[str] = Counter()
        self.role_packets: dict[tuple[int, int], int] = {}  # (dpid, role) -> packets last read
        self.revision = 0  # the store's revision of the tenants held here (tenant_sync.py sets it)
        # What changed, for the shell to fan out (take_events, after every call); bounded, so that a core
        # nobody takes them from (a test, a benchmark) does not grow with them.
        self.events: deque[ev.Event] = deque(maxlen=MAX_PENDING_EVENTS)
        self.marks = Marks(self.ix, lambda: self.settings.learning.floods_to_every_host, lambda: self.revision)
        self.eager = True
        self.canon = canon or (lambda m: m)  # how the switch writes a match back (ofmsg.canonical_match)
        self.cookie_of = cookie_of  # the cookie a flow is written with (encoder.wire_cookie; switch_state.held_as_made)
        self.refusals = identity.Refusals(self.counters)  # claims refused, for GET /v1/hosts
        self.learner = Learner(settings, self.ix, self.counters, self.cap, self.guard)
        # After a restart, endpoints come back from each host's own switch; until every switch had
        # its turn (recover_until), another host's entries for them are kept, not deleted.
        self.recover_until = 0.0
        self.recovering = False
        self.passive = False  # a follower (controller/ha/roles.py): it tracks state but programs nothing
        self.read = ReadModel(self.ix, self.installed, self.datapaths, self.counters, self.cap, lambda: self.settings,
                              self.marks, lambda: self.revision, self.placed_on, self.policy, self.waiting,
                              self.refusals)

    @property
    def changed(self) -> set[Part] | None:
        """Partitions marked since an observer (the EVPN speaker) last looked; None: nobody looks."""
        return self.marks.changed

    @changed.setter
    def changed(self, parts: set[Part] | None) -> None:
        self.marks.changed = parts

    def take_events(self) -> list[ev.Event]:
        """The events since the last call (controller/model/events.py), oldest first."""
        out = list(self.events)
        self.events.clear()
        return out

    # ---- queries -------------------------------------------------------------------------

    @property
    def tenants(self) -> dict[str, Tenant]:
        return self.ix.tenants

    @property
    def hosts(self) -> dict[str, Host]:
        return self.ix.hosts

    @property
    def endpoints(self) -> dict[EpKey, Endpoint]:
        return self.ix.endpoints

    @property
    def bindings(self) -> dict[tuple[int, str], str]:
        return self.ix.bindings

    def host_of_dpid(self, dpid: int) -> Host | None:
        return self.ix.host_of_dpid(dpid)

    def placed_on(self, host: Host) -> set[int]:
        """The tenants whose flows a host holds: where it has members (learn mode: everywhere)."""
        return self.settings.learning.placed(self.ix.placed.get(host.id, ()), self.ix.tenants.values(), host.id)

    def tenant_endpoints(self, vni: int) -> list[Endpoint]:
        return self.ix.tenant_endpoints(vni)

    def is_programmable(self, host: Host) -> bool:
        dpid = host.view.datapath_id
        return dpid in self.datapaths and dpid in self.installed and host.view.patch_ofport is not None

    # ---- OpenFlow connection events ------------------------------------------------------

    def datapath_up(self, dpid: int, peer: Peer | None = None) -> list[Op]:
        """A switch connected: read what it holds before changing anything (no wipe)."""
        self.datapaths.add(dpid)
        self.dp_peers[dpid] = peer
        self.installed.pop(dpid, None)
        self.dumps.pop(dpid, None)
        host = self.ix.host_of_dpid(dpid)
        if host is not None:
            host.lost_since = None
            self.marks.programmed.discard(host.id)
        return [ReadSwitch(dpid)]

    def switch_read(self, dpid: int, dump: SwitchDump, now: float) -> list[Op]:
        """What a switch holds arrived: recover what it learned, then send only the difference."""
        if dpid not in self.datapaths:
            return []
        self.dumps[dpid] = dump
        host = self.ix.host_of_dpid(dpid)
        return self._adopt_dump(host, now) if host is not None else []

    def _adopt_dump(self, host: Host, now: float) -> list[Op]:
        dpid = host.view.datapath_id
        dump = self.dumps.pop(dpid, None) if dpid is not None else None
        if dump is None:
            return []
        self.installed[dpid] = Installed.from_dump(dump)
        for ep in recovered_endpoints(dump, host.id, self.ix, now):
            self.counters["endpoints_recovered"] += 1
            self._learned(ep)
        self.marks.full(host.id)
        return self._flush()

    def datapath_down(self, dpid: int, now: float = 0.0) -> list[Op]:
        self.datapaths.discard(dpid)
        self.dp_peers.pop(dpid, None)
        self.installed.pop(dpid, None)
        self.dumps.pop(dpid, None)
        host = self.ix.host_of_dpid(dpid)
        if host is not None:
            self.marks.programmed.discard(host.id)
            if not host.ovsdb_connected and host.lost_since is None:
                host.lost_since = now
        return []

    # ---- OVSDB events --------------------------------------------------------------------

    def host_view(self, view: HostView, now: float, peer: Peer | None = None) -> list[Op]:
        """A host's OVSDB view (`peer`: where it came from). Not admitted: it waits, outside the index."""
        if not self.policy.admitted(view.system_id):
            return self._wait(view, peer, now)
        self.waiting.pop(view.system_id, None)
        view = self._datapath_claimed(view, peer, now)
        old = self.ix.hosts.get(view.system_id)
        if old is not None and old.view == view and old.ovsdb_connected:
            old.peer = peer or old.peer
            return []
        if old is None:
            LOG.info("host %s joined (overlay ip %s)", view.system_id, view.overlay_ip)
        self._host_news(old, view)
        flips = self.ix.put_host(view)
        host = self.ix.hosts[view.system_id]
        host.lost_since = None
        host.peer = peer or host.peer
        if view.overlay_ip:
            self.tunnels.forgotten_ips.discard(view.overlay_ip)
        new_peer = old is None or old.view.overlay_ip != view.overlay_ip
        if old is None or (old.view.datapath_id, old.view.patch_ofport, old.view.overlay_ip) != (
                view.datapath_id, view.patch_ofport, view.overlay_ip):
            self.marks.full(host.id)
        else:
            self._guards_changed(old, host)
            if old.view.tunnels != view.tunnels:
                parts = self.tunnels.parts_changed(old, host, self.placed_on)  # None: the flow port, all of it
                if parts is None:
                    self.marks.full(host.id)
                else:
                    self.marks.parts(host.id, parts)
        self.marks.flips(flips)
        if new_peer and self.settings.learning.floods_to_every_host:  # one more bucket everywhere
            for other in self.ix.hosts.values():
                self.marks.parts(other.id, self.placed_on(other))
        # the switch was read back before OVSDB said whose it is: programmable from now on
        adopted = self._bound(host, now)
        adopted += self._adopt_dump(host, now) if view.datapath_id in self.dumps else []
        ops = self._tunnel_ops(self.tunnels.view_changed(self.settings, old, host, new_peer, now))
        if old is not None and {p.ofport for p in old.view.tunnels if p.ofport} - {p.ofport for p in view.tunnels}:
            # A port is gone (confirmed): learn() entries taught through it between the purge that
            # followed its removal and the removal taking effect would send into nothing until
            # they idle out, and nothing would teach them again: purge them once more.
            ops += self.purge_learned_on(host)
        return adopted + ops + self._flush()

    def _host_news(self, old: Host | None, view: HostView) -> None:
        """A host came (back), or can no longer join, or can again."""
        back = old is None or not old.ovsdb_connected
        if view.problems and (back or old.view.problems != view.problems):  # type: ignore[union-attr]
            self.events.append(ev.HostRefused(view.system_id, "; ".join(view.problems)))
        elif not view.problems and (back or old.view.problems):  # type: ignore[union-attr]
            self.events.append(ev.HostJoined(view.system_id, view.overlay_ip))

    def ovsdb_down(self, system_id: str, now: float = 0.0) -> list[Op]:
        if self.waiting.pop(system_id, None) is not None:
            return []
        host = self.ix.hosts.get(system_id)
        if host is not None:
            if host.ovsdb_connected:
                self.events.append(ev.HostLeft(system_id, "its OVSDB connection closed"))
            host.ovsdb_connected = False
            if host.view.datapath_id not in self.datapaths and host.lost_since is None:
                host.lost_since = now
        return []

    def tick(self, now: float) -> list[Op]:
        """Time passes: tunnel ports asked for but never seen are asked for again; hosts gone
        longer than the grace period have their endpoints withdrawn."""
        if self.recovering and now >= self.recover_until:
            self.recovering = False
            checked = 0
            for dpid, inst in self.installed.items():
                host = self.ix.host_of_dpid(dpid)
                if inst.read_back() and host is not None:
                    self.marks.parts(host.id, (LEFTOVERS,))
                    checked += 1
            LOG.info("%s: what nobody claimed on %d read-back switches goes now", RECOVERY_OVER, checked)
        ops = self._tunnel_ops(self.tunnels.retry_overdue(self.settings, now))
        for host in list(self.ix.hosts.values()):
            if host.lost_since is None or host.withdrawn or now - host.lost_since < self.settings.host_grace:
                continue
            LOG.warning("host %s unreachable for %.0f s: withdrawing its endpoints (its tunnels stay)",
                        host.id, now - host.lost_since)
            self.counters["hosts_withdrawn"] += 1
            for key in list(self.ix.eps_by_host.get(host.id, ())):
                self._drop(key, "its host was unreachable longer than host_grace")
            flips = self.ix.put_host(replace(host.view, member_vlans=frozenset()), ovsdb_connected=False)
            self.ix.hosts[host.id].withdrawn = True
            self.marks.flips(flips)
        return ops + self._flush()

    def forget_host(self, system_id: str, now: float) -> list[Op]:
        """An operator removed a host: drop its endpoints and the tunnels toward it everywhere."""
        self.events.append(ev.HostLeft(system_id, "forgotten by an operator"))
        self._withdraw(self.ix.hosts[system_id], "its host was forgotten")
        ops = self._tunnel_ops(self.tunnels.ops(self.settings, now, list(self.ix.hosts.values())))
        return ops + self._flush()

    def _withdraw(self, host: Host, why: str) -> None:
        """Out of the index: its endpoints withdrawn everywhere (`why`, for their events), the
        tunnels toward it to go (the caller asks for their removal), every flood bucket toward it
        recomputed."""
        if host.view.overlay_ip:
            self.tunnels.forgotten_ips.add(host.view.overlay_ip)
        for key in list(self.ix.eps_by_host.get(host.id, ())):
            self._drop(key, why)
        self.marks.flips(self.ix.drop_host(host.id))
        self.marks.forget(host.id)
        self.tunnels.toward.pop(host.id, None)
        if self.settings.learning.floods_to_every_host:  # one bucket fewer everywhere
            for other in self.ix.hosts.values():
                self.marks.parts(other.id, self.placed_on(other))

    def retune_tunnels(self, settings: Settings, now: float) -> list[Op]:
        """A new tunnel kind or tunnel_ports mode on a running overlay, without a restart.

        New ports are asked for at once; traffic keeps the old ones until the new are up, and
        the old ones go only then (tunnel_ports.py). Every host's flows are recomputed: unicast
        entries and flood buckets name the ports.
        """
        self.settings = settings
        self.learner.settings = settings
        self.cap.retuned(settings.max_endpoints, self.ix.ep_count)  # the cap may have changed
        for host in self.ix.hosts.values():
            self.marks.full(host.id)
        return self._tunnel_ops(self.tunnels.ops(settings, now, list(self.ix.hosts.values()))) + self._flush()

    def _tunnel_ops(self, ops: list[Op]) -> list[Op]:
        """Tunnel port operations; a removal waits (TunnelBook.retire) until the host's switch sends
        out of those ports no more: Core.drain sends it after the flows that did were recomputed."""
        out: list[Op] = []
        for op in ops:
            if isinstance(op, DeletePorts):
                self.tunnels.retire(op)
            else:
                out.append(op)
        return out

    def _ports_removed(self, deadline: float | None) -> list[Op]:
        """The removals of ports no flow or group on their host's switch sends out of any more.

        Flows and groups that still do are marked and recomputed first; a port they still use then
        (a host's view came before its peers' after a restart, so the new ports were not all known
        to be up) is kept, and asked to go again when the host's view changes. Entries read back
        and kept while recovering, for endpoints not known yet, may send out of them too: they go
        first (the tenant's flood reaches those endpoints). While the host's switch is not
        programmed (disconnected, not read back yet), its old flows may still use the ports: they
        wait for it. Each removal is followed by the purge of the learn() entries that may use them.
        """
        out: list[Op] = []
        for host_id, (op, rechecked) in list(self.tunnels.retiring.items()):
            if deadline is not None and time.perf_counter() > deadline:
                break  # the rest in the next slice (each costs a pass over its switch's flows)
            host = self.ix.hosts.get(host_id)
            if host is None or self.passive:  # forgotten; or a follower (it writes nothing)
                del self.tunnels.retiring[host_id]
                continue
            if host_id in self.marks.dirty or not self.is_programmable(host):
                continue  # its switch's changes are not all out yet
            dpid: int = host.view.datapath_id  # type: ignore[assignment]
            there = [p for p in host.view.tunnels if p.port_uuid in op.port_uuids]
            if not there:  # gone already (removed by hand)
                del self.tunnels.retiring[host_id]
                continue
            ports = {p.ofport for p in there if p.ofport}
            naming = reconcile.naming(self.settings, self.ix, self.cap, host, self.installed[dpid], self.placed_on,
                                      self.policy.rules_of(host.id), ports)
            if naming and not rechecked:
                self.tunnels.retiring[host_id] = (op, True)
                self.marks.parts(host_id, naming)
                continue
            del self.tunnels.retiring[host_id]
            if naming:
                LOG.info("host %s: tunnel ports %s still in use: kept for now", host_id, sorted(ports))
                continue
            out += [FlowDelete(dpid, *key) for key in self.installed[dpid].drop_unclaimed(f.ROLE_UNICAST_KNOWN)]
            out.append(replace(op, port_uuids=tuple(sorted(p.port_uuid for p in there))))
            out += self.purge_learned_on(host)
        return out

    def _waiting(self) -> bool:
        """Ports to remove or learn() entries to purge on a host whose switch is programmed (the
        others wait for it)."""
        return any((h := self.ix.hosts.get(host_id)) is None or self.is_programmable(h)
                   for host_id in (*self.tunnels.retiring, *self.purges))

    # ---- what the switches counted ---------------------------------------------------------

    def role_stats(self, dpid: int, role: int, packets: int) -> None:
        """One switch's packet count for one role (an aggregate over its flows): counters.fold_role."""
        if dpid in self.datapaths:
            fold_role(self.counters, self.role_packets, dpid, role, packets)

    # ---- marking what changed ----------------------------------------------------------------

    # ---- recompute and diff ------------------------------------------------------------------

    def _flush(self) -> list[Op]:
        return self.drain() if self.eager else []

    def pending(self) -> bool:
        return bool(self.marks.dirty or self.tunnels.toward or self.cap.pending() or self._waiting())

    def _mark_caps(self) -> bool:
        marks = self.cap.step(self.ix, busy=self.marks.dirty)
        for host_id, parts in marks:
            self.marks.parts(host_id, parts)
        return bool(marks)

    def drain(self, budget_s: float | None = None, max_parts: int = 20) -> list[Op]:
        """Recompute dirty partitions and return the difference (in the order reconcile.Batch
        says); stop after budget_s seconds."""
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        out = reconcile.Batch(first=self._tunnel_ops(self.tunnels.for_joined(self.settings, deadline)))
        while self._drain_hosts(out, deadline, max_parts):
            out.last += self._learned_purged()  # after the flows that no longer teach them
            out.last += self._ports_removed(deadline)  # after the flows and groups that no longer use them
            if not self.marks.dirty:  # (or those that still did, marked again)
                break
        return out.ops(lambda dpid, key: key in self.installed[dpid].owner)

    def _drain_hosts(self, out: reconcile.Batch, deadline: float | None, max_parts: int) -> bool:
        """Recompute dirty partitions host after host into out; False when the deadline passed first."""
        while self.marks.dirty or self._mark_caps():  # a cap's next step once its host's changes are out
            host_id = next(iter(self.marks.dirty))
            host = self.ix.hosts.get(host_id)
            if host is None or self.passive or not self.is_programmable(host):
                self.marks.drained(host_id, programmed=False)  # in full when it becomes programmable (or leads)
                continue
            d = self.marks.dirty[host_id]
            dpid: int = host.view.datapath_id  # type: ignore[assignment]
            inst = self.installed[dpid]
            if d.full:
                out.first += reconcile.expand_full(self.settings, self.ix, inst, host, self.placed_on(host), d)
            batch = reconcile.take(d, max_parts)
            if not d.parts and not d.full:
                self.marks.drained(host_id, programmed=True)
            for part in batch:
                if part is LEFTOVERS:
                    out.deletes += reconcile.leftovers(inst, dpid, self.recovering,
                                                       self.settings.learning.keeps_switch_entries)
                else:
                    want = reconcile.desired(self.settings, self.ix, self.cap, host, part, self.placed_on,
                                             self.policy.rules_of(host.id), inst)
                    reconcile.diff(inst, dpid, part, want, self.canon, out, self.cookie_of)
            if deadline is not None and time.perf_counter() > deadline:
                return False
        return True

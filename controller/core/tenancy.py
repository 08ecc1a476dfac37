"""The core's tenant changes: tenants created, changed (renumbered, moved to other VLANs or hosts)
or deleted, one at a time or a whole revision at once, and the learn() entries they leave behind.

A part of Core (controller/core/core.py), kept here so that each file stays one concern, as
controller/core/trust.py is: Core inherits these methods; they read and change its state as its
own methods do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from controller.core.index import Index, Kept
from controller.core.marks import Marks
from controller.model import events as ev
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowPurge, Op
from controller.model.state import Endpoint, Host, Tenant
from controller.pipeline.settings import Settings


class Tenancy:
    """Core's tenant changes. The state named below is Core's (set up in Core.__init__)."""

    settings: Settings
    ix: Index
    marks: Marks
    counters: Counter[str]
    events: list[ev.Event]
    revision: int  # the store's revision of the tenants held (controller/core/marks.py)
    purges: dict[str, set[int]]  # host -> VLANs whose learn() entries go once its changes are out
    passive: bool

    # Core's own, used here
    def is_programmable(self, host: Host) -> bool:
        raise NotImplementedError

    def _learned(self, ep: Endpoint) -> None:
        raise NotImplementedError

    def _flush(self) -> list[Op]:
        raise NotImplementedError

    def purge_learned_on(self, host: Host) -> list[Op]:
        """learn() entries of every tenant on a host: they may send out of a port that is going."""
        if not self.settings.learning.keeps_switch_entries or host.view.datapath_id is None \
                or not self.is_programmable(host):
            return []
        return [FlowPurge(host.view.datapath_id, t.UNICAST, f.match(vlan_vid=(tn.vlan_on(host.id), 0x0FFF)))
                for tn in self.ix.tenants.values() if tn.present_on(host.id)]

    def put_tenant(self, tenant: Tenant) -> list[Op]:
        """Create or replace a tenant; a changed VNI or VLAN re-programs only this tenant, which
        stays whole: its endpoints (with their IPs) are carried over, re-keyed to its new VNI."""
        return self.change_tenants({tenant.name: tenant})

    def delete_tenant(self, name: str) -> list[Op]:
        return self.change_tenants({name: None})

    def change_tenants(self, changes: Mapping[str, Tenant | None], revision: int | None = None) -> list[Op]:
        """Tenants put (name -> the tenant) or deleted (name -> None) at once: one write of the
        store, which made `revision` (None: the revision stays). What went or changed is retired
        first, so that no two tenants share a VNI or a VLAN on the way (an apply may swap two
        tenants' VLANs); a changed tenant keeps its endpoints with their IPs (re-keyed to its new
        VNI), and the switches get only the net difference."""
        ops: list[Op] = []
        news: list[tuple[str, str]] = []
        carried: dict[str, Kept] = {}
        for name, tenant in sorted(changes.items()):
            old = self.ix.tenants.get(name)
            if old is not None and old != tenant:
                if tenant is not None:
                    carried[name] = self.ix.kept_by(old, tenant)
                ops += self._retire_tenant(old)
                news.append((name, "deleted" if tenant is None else "changed"))
        for name, tenant in sorted(changes.items()):
            if tenant is not None and self.ix.tenants.get(name) != tenant:
                if name not in carried:
                    news.append((name, "created"))
                self._place_tenant(tenant, carried.get(name))
        if revision is not None:
            self.at_revision(revision)  # after the marks: hosts marked now hold the revision before
        self.events += [ev.TenantChanged(name, change, self.revision) for name, change in sorted(news)]
        return ops + self._flush()

    def at_revision(self, revision: int) -> None:
        """The tenants are the store's at this revision (marks.py: what each switch holds of them)."""
        self.revision = max(self.revision, revision)

    def _place_tenant(self, tenant: Tenant, carried: Kept | None) -> None:
        self.marks.flips(self.ix.put_tenant(tenant))
        self.marks.tenant(tenant.vni)
        if carried is not None:
            eps, flood_peers = carried
            for peer_id in sorted(flood_peers):
                self.marks.flips(self.ix.set_flood_member(tenant.vni, peer_id, True))
            for ep in eps:
                self._learned(ep)
            self.counters["endpoints_carried"] += len(eps)
        if self.settings.learning.floods_to_every_host:
            for host in self.ix.hosts.values():
                if tenant.present_on(host.id):
                    self.marks.parts(host.id, {tenant.vni})

    def _retire_tenant(self, old: Tenant) -> list[Op]:
        holders = set(self.ix.members.get(old.vni, ()))
        eps = set(self.ix.eps_by_vni.get(old.vni, ()))
        if self.settings.learning.floods_to_every_host:
            holders |= {h for h in self.ix.hosts if old.present_on(h)}
        self.ix.delete_tenant(old.name)
        self.marks.tenant(old.vni)
        for host_id in holders:
            self.marks.parts(host_id, {old.vni} | eps)
        return self._purge_learned(old)

    def _purge_learned(self, tenant: Tenant) -> list[Op]:
        """learn() entries are the switch's own: those of a tenant that changed or left go once its
        host's changes are out (Core._learned_purged), not before: until the switch lost the old
        tunnel-in entry, frames still arriving under the old VNI would teach it entries that send
        under that VNI again (learn() copies the frame's tunnel ID), where nobody receives it."""
        if self.settings.learning.keeps_switch_entries:
            for host in self.ix.hosts.values():
                if tenant.present_on(host.id):
                    self.purges.setdefault(host.id, set()).add(tenant.vlan_on(host.id))
        return []

    def _learned_purged(self) -> list[Op]:
        """The purges of learn() entries waiting for their host's changes to be out."""
        out: list[Op] = []
        for host_id, vlans in list(self.purges.items()):
            host = self.ix.hosts.get(host_id)
            if host is not None and (host_id in self.marks.dirty or not self.is_programmable(host)):
                continue  # not all out yet; or (not programmed) its read-back keeps them: purged then
            del self.purges[host_id]
            if host is not None and not self.passive:
                out += [FlowPurge(host.view.datapath_id, t.UNICAST,  # type: ignore[arg-type]
                                  f.match(vlan_vid=(vlan, 0x0FFF))) for vlan in sorted(vlans)]
        return out

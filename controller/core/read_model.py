"""The core's state as the outside reads it: the REST API, the web view, the metrics and the
packet tracer ask here, never the core's index or its switch bookkeeping. Read-only: nothing here
changes the core, and what it hands out is not the caller's to change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from controller.core import reconcile
from controller.core.admission import HostPolicy, PendingHost
from controller.core.flood_cap import LearningCap
from controller.core.identity import Refusals
from controller.core.index import Index
from controller.core.marks import Marks
from controller.core.parts import EpKey
from controller.core.switch_state import Installed
from controller.model import flows as f
from controller.model.state import Endpoint, Host, PortRule, Tenant, TunnelPort
from controller.pipeline.settings import Settings


class ReadModel:
    def __init__(self, ix: Index, installed: Mapping[int, Installed], datapaths: set[int],
                 counters: Counter[str], cap: LearningCap, settings: Callable[[], Settings],
                 marks: Marks, revision: Callable[[], int], placed_on: Callable[[Host], set[int]],
                 policy: HostPolicy | None = None, pending: Mapping[str, PendingHost] | None = None,
                 refusals: Refusals | None = None) -> None:
        self._ix = ix
        self._marks = marks
        self._revision = revision
        self._policy = policy or HostPolicy()
        self._pending = pending if pending is not None else {}
        self._refusals = refusals or Refusals(counters)
        self._installed = installed
        self._datapaths = datapaths
        self._counters = counters
        self._cap = cap
        self._settings = settings  # the current ones: a reload changes them
        self._placed_on = placed_on

    # ---- tenants ---------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The store's revision of the tenants held here (every write makes a higher one)."""
        return self._revision()

    @property
    def tenants(self) -> Mapping[str, Tenant]:
        return self._ix.tenants

    def tenant_by_vni(self, vni: int) -> Tenant | None:
        return self._ix.tenant_by_vni(vni)

    def clash_candidates(self, tenant: Tenant) -> list[Tenant]:
        """The tenants tenant could clash with (VNI, a local VLAN): Index.clash_candidates."""
        return self._ix.clash_candidates(tenant)

    def member_hosts(self, tenant: Tenant) -> set[str]:
        """Hosts with members of the tenant: learned endpoints, or br0 ports tagged with its VLAN."""
        return set(self._ix.members.get(tenant.vni, ()))

    def tenants_at(self, host_id: str) -> list[Tenant]:
        """Tenants with members on a host or assigned to it by name (not every tenant of the cloud)."""
        ix = self._ix
        names = {ix.by_vni[v].name for v in ix.placed.get(host_id, ()) if v in ix.by_vni}
        names |= set(ix.named_on(host_id))
        return [ix.tenants[n] for n in sorted(names)]

    # ---- hosts and peers -------------------------------------------------------------------

    @property
    def hosts(self) -> Mapping[str, Host]:
        return self._ix.hosts

    @property
    def waiting(self) -> Mapping[str, PendingHost]:
        """Hosts connected but not admitted (controller/core/admission.py): listed, never programmed."""
        return self._pending

    def admission(self, host_id: str) -> tuple[bool, str]:
        """(admitted, by whom or why not)."""
        return self._policy.status(host_id)

    def admission_mode(self) -> str:
        return self._policy.mode.name

    def decisions(self) -> Mapping[str, bool]:
        """The operator's: host -> admitted (True) or revoked (False)."""
        return self._policy.decisions

    def port_rules(self, host_id: str) -> Mapping[str, PortRule]:
        """A host's br0 port rules (controller/pipeline/port_security.py), by port."""
        return self._policy.rules_of(host_id)

    def refused_claims(self, identity: str) -> list[dict]:
        """Connections refused for claiming this host (or "dpid:<hex>"): controller/core/identity.py."""
        return self._refusals.of(identity)

    def refused_identities(self) -> list[str]:
        return list(self._refusals.by_identity)

    def peer(self, peer_id: str) -> Host | None:
        """A host or an external VTEP (controller/bgp/external.py), by id."""
        return self._ix.peers.get(peer_id)

    def peer_at(self, ip: str) -> Host | None:
        """The host or external VTEP with this overlay IP."""
        return self._ix.peers.get(self._ix.host_by_ip.get(ip, ""))

    def openflow_connected(self, host: Host) -> bool:
        return host.view.datapath_id in self._datapaths

    def switch_connected(self, dpid: int) -> bool:
        return dpid in self._datapaths

    def switches(self) -> int:
        """OpenFlow connections."""
        return len(self._datapaths)

    def tunnel_type(self) -> str:
        return self._settings().tunnel_type

    def port_toward(self, host: Host, peer_ip: str) -> TunnelPort | None:
        """The port the host's flows use toward a peer (the tunnel_ports mode says which)."""
        s = self._settings()
        return s.tunnel_ports.port_toward(host, peer_ip, s.tunnel_type)

    def tunnel_states(self, host: Host) -> tuple[dict[str, str], str]:
        """(peer ip -> created/adopted: the host's own port toward it, the state toward the others):
        the tunnel_ports mode's `states`."""
        s = self._settings()
        return s.tunnel_ports.states(host, s.tunnel_type)

    def tunnel_mode(self) -> tuple[str, str]:
        """(tunnel kind, tunnel_ports mode): what the tunnel states depend on besides the views."""
        s = self._settings()
        return s.tunnel_type, s.tunnel_ports.name

    # ---- endpoints -------------------------------------------------------------------------

    def endpoint(self, key: EpKey) -> Endpoint | None:
        return self._ix.endpoints.get(key)

    def endpoints_of(self, vni: int) -> list[Endpoint]:
        """A tenant's endpoints, by MAC."""
        return self._ix.tenant_endpoints(vni)

    def endpoint_count(self) -> int:
        return len(self._ix.endpoints)

    def is_member(self, host_id: str, vni: int) -> bool:
        return host_id in self._ix.members.get(vni, ())

    def endpoints_at(self, vni: int, host_id: str) -> int:
        return self._ix.ep_count.get((vni, host_id), 0)

    def learning_capped(self, vni: int, host_id: str) -> bool:
        """Has the tenant's learning on the host refused frames at max_endpoints?"""
        return (vni, host_id) in self._cap.refused

    def endpoint_port(self, ep: Endpoint) -> str | None:
        """The br0 port an endpoint sits behind, when its host's OVSDB says (attached-mac)."""
        host = self._ix.hosts.get(ep.host_id)
        return dict(host.view.attached).get(ep.mac) if host else None

    def external_of(self, ep: Endpoint) -> dict | None:
        """Where an endpoint behind an external VTEP came from (None: one of ours)."""
        peer = self._ix.peers.get(ep.host_id)
        if peer is None or peer.view.external is None:
            return None
        return {"vtep": peer.view.overlay_ip, "peer": peer.view.external}

    # ---- what the switches were told -------------------------------------------------------

    def _installed_on(self, host: Host) -> Installed | None:
        dpid = host.view.datapath_id
        return self._installed.get(dpid) if dpid is not None else None

    def installed_flows(self, host: Host) -> list[f.Flow] | None:
        """The flows the core installed on the host's switch (None: its content is not known)."""
        inst = self._installed_on(host)
        return None if inst is None else reconcile.installed_flows(self._settings(), self._ix, self._cap, host, inst,
                                                                   self._placed_on, self._policy.rules_of(host.id))

    def installed_groups(self, host: Host) -> list[f.GroupEntry]:
        """Its groups whose buckets are known."""
        inst = self._installed_on(host)
        return [] if inst is None else [g for g in inst.groups.values() if g is not None]

    def flood_group(self, host: Host, vni: int) -> f.GroupEntry | None:
        inst = self._installed_on(host)
        return inst.groups.get(vni) if inst is not None else None

    def flow_count(self, host: Host) -> int:
        """Flows installed on a connected switch (0 when not connected or not known)."""
        inst = self._installed_on(host) if self.openflow_connected(host) else None
        return inst.flow_count() if inst is not None else 0

    def computed_for(self, host: Host) -> tuple[int | None, str | None]:
        """(the revision of the tenants whose every change for the host's switch has gone out as
        operations, None) or (None, why its switch holds no known revision). What the switch
        confirmed is the shell's to add (controller/southbound/revisions.py)."""
        v = host.view
        if v.problems:
            return None, "not joined: " + "; ".join(v.problems)
        if v.datapath_id is None or v.datapath_id not in self._datapaths:
            return None, "disconnected: no OpenFlow connection from its br1"
        if v.datapath_id not in self._installed:
            return None, "being read back (its switch just connected)"
        if v.patch_ofport is None:
            return None, "no patch port between br0 and br1"
        revision = self._marks.computed_for(host.id)
        if revision is None:
            return None, "being programmed in full (its switch was read back or re-tuned)"
        return revision, None

    # ---- counters --------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

"""BGP EVPN (RFC 7432; RFC 8365 for VXLAN) as values: what the overlay advertises, what it learns.

Export: the core records which endpoints and tenants changed (Core.changes); `Exporter.sync`
turns them into route operations against what is advertised now:
  type 2 (MAC/IP advertisement)  per learned endpoint: its MAC alone, and its MAC with each IP;
                                 label = the VNI, next hop = its host's underlay IP; a move
                                 re-advertises it with a MAC Mobility sequence number one higher
                                 than the highest advertised for that MAC now, here or by a peer
                                 (none left, e.g. the peer withdrew first: 0, no community).
  type 3 (inclusive multicast)   per (VNI, host with members): the host is in the VNI's flood list.
Every route carries the VNI's route distinguisher and route target (`Policy`); withdrawn when the
endpoint ages out, leaves or its tenant is deleted, or when the host has no members left.

Import: `Importer.receive` folds one received path (or its withdrawal) into what each peer
advertises and returns what changed for the core (controller/bgp/external.py applies it): an
endpoint behind an external VTEP (`RemoteMac`), its end (`RemoteMacGone`), a VTEP joining or
leaving a VNI's flood list (`RemoteFlood`). A path of no tenant waits aside until its tenant
exists (`Importer.tenants_changed`). Nothing here knows BGP sessions or os-ken
(controller/bgp/speaker.py wires it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.core.index import EpKey, Index

VNI_LABEL_MAX = 0xFFFFFF


# ---- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """Route distinguishers and route targets: FRR's automatic ones unless a tenant has its own.

    RD  <local_as>:<vni> (type 0; a 4-byte AS gives <router_id>:<vni mod 65536>, type 1).
    RT  <AS>:<vni>, AS being the low 16 bits of local_as (RFC 8365 section 5.1.2.1, what FRR
        derives); `route_targets` sets it per tenant name. An automatic RT imports any
        `*:<vni>` (a peer in another AS derives it from its own AS), a configured one only itself.
    """

    local_as: int
    router_id: str
    route_targets: Mapping[str, str] = field(default_factory=dict)

    def rd(self, vni: int) -> str:
        if self.local_as <= 0xFFFF:
            return f"{self.local_as}:{vni}"
        return f"{self.router_id}:{vni & 0xFFFF}"

    def rt(self, tenant: str, vni: int) -> str:
        return self.route_targets.get(tenant) or f"{self.local_as & 0xFFFF}:{vni}"

    def imports(self, tenant: str, vni: int, rts: Iterable[str]) -> bool:
        """Does a route with these route targets belong to the tenant?"""
        own = self.route_targets.get(tenant)
        if own is not None:
            return own in rts
        return any(rt.rsplit(":", 1)[-1] == str(vni) for rt in rts)


# ---- routes and what to do with them ---------------------------------------------------------

@dataclass(frozen=True)
class MacRoute:
    """Type 2: mac (and ip, None = the MAC alone) of VNI vni behind next_hop."""

    rd: str
    rt: str
    vni: int
    mac: str
    ip: str | None
    next_hop: str
    seq: int = 0  # MAC Mobility sequence number; 0 and never moved: no community

    @property
    def key(self) -> tuple:
        return ("mac", self.rd, self.mac, self.ip)


@dataclass(frozen=True)
class FloodRoute:
    """Type 3: vtep (the originating router's IP, and the next hop) floods VNI vni (ingress replication)."""

    rd: str
    rt: str
    vni: int
    vtep: str

    @property
    def key(self) -> tuple:
        return ("flood", self.rd, self.vtep)


Route = MacRoute | FloodRoute


@dataclass(frozen=True)
class Vrf:
    """os-ken keeps local EVPN routes in a VRF per RD: made before its first route, removed after its last."""

    rd: str
    rt: str
    present: bool


@dataclass(frozen=True)
class Advertise:
    route: Route


@dataclass(frozen=True)
class Withdraw:
    route: Route


RouteOp = Vrf | Advertise | Withdraw


# ---- export ----------------------------------------------------------------------------------

class Exporter:
    """What this controller advertises, kept equal to the core's state for what changed."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.advertised: dict[tuple, Route] = {}
        self.by_ep: dict[EpKey, set[tuple]] = defaultdict(set)
        self.by_vni: dict[int, set[tuple]] = defaultdict(set)  # type-3 routes
        self.seq: dict[EpKey, int] = {}  # the MAC Mobility sequence number in use
        self.at: dict[EpKey, str] = {}  # the next hop an endpoint is advertised behind
        self.vrfs: dict[int, Vrf] = {}
        self.remote_seq: dict[EpKey, int] = {}  # the highest sequence number a peer advertised (Importer)

    def sync(self, ix: Index, eps: Iterable[EpKey], vnis: Iterable[int]) -> list[RouteOp]:
        """Route operations that make the advertised routes of these endpoints and VNIs match ix."""
        adds: list[RouteOp] = []
        withdraws: list[RouteOp] = []
        touched: set[int] = set()
        for key in eps:
            want = self._endpoint_routes(ix, key)
            self._diff(self.by_ep[key], want, adds, withdraws)
            if not self.by_ep[key]:
                del self.by_ep[key]
            touched.add(key[0])
        for vni in vnis:
            self._diff(self.by_vni[vni], self._flood_routes(ix, vni), adds, withdraws)
            if not self.by_vni[vni]:
                del self.by_vni[vni]
            touched.add(vni)
        first: list[RouteOp] = []
        last: list[RouteOp] = []
        for r in adds:
            vni = r.route.vni  # type: ignore[union-attr]
            if vni not in self.vrfs:
                self.vrfs[vni] = Vrf(r.route.rd, r.route.rt, True)  # type: ignore[union-attr]
                first.append(self.vrfs[vni])
        for vni in sorted(touched):
            vrf = self.vrfs.get(vni)
            if vrf is not None and ix.tenant_by_vni(vni) is None and not self._holds(vni):
                del self.vrfs[vni]
                last.append(Vrf(vrf.rd, vrf.rt, False))
        return first + withdraws + adds + last

    def _holds(self, vni: int) -> bool:
        return bool(self.by_vni.get(vni)) or any(k[0] == vni for k in self.by_ep)

    def _diff(self, have: set[tuple], want: list[Route], adds: list[RouteOp], withdraws: list[RouteOp]) -> None:
        wanted = {r.key: r for r in want}
        for k in sorted(have - set(wanted), key=repr):
            withdraws.append(Withdraw(self.advertised.pop(k)))
            have.discard(k)
        for k, r in wanted.items():
            if self.advertised.get(k) != r:
                self.advertised[k] = r
                adds.append(Advertise(r))
            have.add(k)

    def _endpoint_routes(self, ix: Index, key: EpKey) -> list[Route]:
        vni, mac = key
        ep = ix.endpoints.get(key)
        tenant = ix.tenant_by_vni(vni)
        host = ix.peers.get(ep.host_id) if ep is not None else None
        if ep is None or tenant is None or host is None or host.view.external or not host.view.overlay_ip:
            self.at.pop(key, None)  # gone from here (or behind a peer's VTEP): withdrawn
            self.seq.pop(key, None)
            return []
        nh = host.view.overlay_ip
        before = self.at.get(key)
        if before != nh and (before is not None or key in self.remote_seq):
            self.seq[key] = max(self.seq.get(key, 0), self.remote_seq.get(key, 0)) + 1  # a move
        self.at[key] = nh
        seq = self.seq.get(key, 0)
        rd, rt = self.policy.rd(vni), self.policy.rt(tenant.name, vni)
        return [MacRoute(rd, rt, vni, mac, ip, nh, seq) for ip in (None, *sorted(ep.ips))]

    def _flood_routes(self, ix: Index, vni: int) -> list[Route]:
        tenant = ix.tenant_by_vni(vni)
        if tenant is None:
            return []
        rd, rt = self.policy.rd(vni), self.policy.rt(tenant.name, vni)
        out: list[Route] = []
        for host_id in sorted(ix.members.get(vni, ())):
            host = ix.peers.get(host_id)
            if host is not None and not host.view.external and host.view.overlay_ip:
                out.append(FloodRoute(rd, rt, vni, host.view.overlay_ip))
        return out

    def everything(self, ix: Index) -> list[RouteOp]:
        """Every route the current state calls for (at start, or after a peer came back)."""
        return self.sync(ix, list(ix.endpoints), list(ix.by_vni))


# ---- import ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    """One path a peer advertised (or withdrew), decoded from BGP (controller/bgp/speaker.py)."""

    peer: str
    kind: int  # 2 (MAC/IP) or 3 (inclusive multicast)
    rd: str
    vni: int | None  # the label (type 2) or the PMSI tunnel's (type 3), when given
    vtep: str  # the next hop (type 2), the originating router's IP (type 3)
    rts: tuple[str, ...] = ()
    mac: str | None = None
    ip: str | None = None
    seq: int = 0
    withdraw: bool = False

    @property
    def key(self) -> tuple:
        return (self.peer, self.kind, self.rd, self.mac, self.ip, self.vtep if self.kind == 3 else None)


@dataclass(frozen=True)
class RemoteMac:
    """mac of VNI vni is behind the external VTEP vtep, learned from peer, with these IPs."""

    vni: int
    mac: str
    vtep: str
    peer: str
    ips: frozenset[str]
    seq: int


@dataclass(frozen=True)
class RemoteMacGone:
    vni: int
    mac: str


@dataclass(frozen=True)
class RemoteFlood:
    """The external VTEP joins (present) or leaves the VNI's flood list."""

    vni: int
    vtep: str
    peer: str
    present: bool


ImportEvent = RemoteMac | RemoteMacGone | RemoteFlood


class Importer:
    """Routes received from every peer, by MAC and by flood list: what the core must know of them.

    A path of no tenant here (an unknown VNI, a route target the tenant does not import) is kept
    aside, not dropped: a peer sends its routes once, so a tenant created while the session is up
    would otherwise see none of them until the session was reset. When a tenant appears (the core
    marks its VNI, `tenants_changed`), the paths waiting for its VNI are received again; when it
    goes, the paths it held go back aside.
    """

    def __init__(self, policy: Policy, exporter: Exporter | None = None) -> None:
        self.policy = policy
        self.exporter = exporter  # told the sequence numbers peers use, so our moves outbid them
        self.paths: dict[tuple, tuple[int, Received]] = {}  # key -> (vni, path)
        self.held: dict[int, set[tuple]] = defaultdict(set)  # vni -> keys of the paths it holds
        self.aside: dict[tuple, Received] = {}  # key -> a path of no tenant (yet)
        self.waiting: dict[int, set[tuple]] = defaultdict(set)  # vni -> keys of the paths aside it may take
        self.macs: dict[EpKey, set[tuple]] = defaultdict(set)
        self.floods: dict[tuple[int, str], set[tuple]] = defaultdict(set)
        self.ignored = 0  # paths of no tenant (unknown VNI, foreign route target) or of our own VTEPs

    def receive(self, r: Received, ix: Index) -> list[ImportEvent]:
        self._take_back(r.key)  # whatever it was, it is decided again
        if r.withdraw:
            return self._release(r.key)
        vni = self._vni_of(r, ix)
        own = r.vtep in ix.host_by_ip and not ix.peers[ix.host_by_ip[r.vtep]].view.external
        if vni is None or own:
            self.ignored += 1
            if not own:  # ours reflected back never count; another's may, once its tenant exists
                self._put_aside(r)
            return self._release(r.key)  # it may have been another tenant's before
        before = self.paths.get(r.key)
        self._hold(vni, r)
        out = self._changed(before[0], before[1]) if before is not None and before[0] != vni else []
        return out + self._changed(vni, r)

    def peer_down(self, peer: str) -> list[ImportEvent]:
        """Everything the peer advertised is gone (os-ken also withdraws it path by path)."""
        for key in [k for k in self.aside if k[0] == peer]:
            self._take_back(key)
        out: list[ImportEvent] = []
        for key in [k for k in self.paths if k[0] == peer]:
            out += self._release(key)
        return out

    def tenants_changed(self, vnis: Iterable[int], ix: Index) -> list[ImportEvent]:
        """Tenants were created, deleted or renumbered (a VNI marked for any other reason costs two
        lookups): the paths waiting for a VNI whose tenant exists now count; those a VNI without a
        tenant held go aside, with nothing to tell the core (it forgot them with the tenant)."""
        out: list[ImportEvent] = []
        for vni in vnis:
            if ix.tenant_by_vni(vni) is None:
                for key in list(self.held.get(vni, ())):
                    r = self.paths[key][1]
                    self._release(key)
                    self._put_aside(r)
            else:
                for key in sorted(self.waiting.get(vni, ()), key=repr):
                    if key in self.aside:
                        out += self.receive(self.aside[key], ix)
        return out

    def _hold(self, vni: int, r: Received) -> None:
        before = self.paths.get(r.key)
        if before is not None:
            self._drop_key(self.held, before[0], r.key)
        self.paths[r.key] = (vni, r)
        self.held[vni].add(r.key)

    def _release(self, key: tuple) -> list[ImportEvent]:
        held = self.paths.pop(key, None)
        if held is None:
            return []
        self._drop_key(self.held, held[0], key)
        return self._changed(held[0], held[1])

    def _put_aside(self, r: Received) -> None:
        self.aside[r.key] = r
        for vni in self._candidates(r):
            self.waiting[vni].add(r.key)

    def _take_back(self, key: tuple) -> None:
        r = self.aside.pop(key, None)
        for vni in self._candidates(r) if r is not None else ():
            self._drop_key(self.waiting, vni, key)

    @staticmethod
    def _drop_key(index: dict[int, set[tuple]], vni: int, key: tuple) -> None:
        keys = index.get(vni)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[vni]

    @staticmethod
    def _candidates(r: Received) -> list[int]:
        """The VNIs a path may belong to: its label, else the numbers its route targets end in."""
        if r.vni is not None:
            return [r.vni]
        return [int(rt.rsplit(":", 1)[-1]) for rt in r.rts if rt.rsplit(":", 1)[-1].isdigit()]

    def _vni_of(self, r: Received, ix: Index) -> int | None:
        """The tenant a path belongs to: its VNI, if that tenant's route target is on it."""
        for vni in self._candidates(r):
            tenant = ix.tenant_by_vni(vni)
            if tenant is not None and self.policy.imports(tenant.name, vni, r.rts):
                return vni
        return None

    def _changed(self, vni: int, r: Received) -> list[ImportEvent]:
        if r.kind == 3:
            spot = (vni, r.vtep)
            had = bool(self.floods.get(spot))
            if r.key in self.paths:
                self.floods[spot].add(r.key)
            else:
                self.floods[spot].discard(r.key)
            has = bool(self.floods[spot])
            if not has:
                del self.floods[spot]
            return [RemoteFlood(vni, r.vtep, r.peer, has)] if has != had else []
        if r.mac is None:
            return []
        ep = (vni, r.mac)
        if r.key in self.paths:
            self.macs[ep].add(r.key)
        else:
            self.macs[ep].discard(r.key)
        paths = [self.paths[k][1] for k in sorted(self.macs[ep], key=repr)]
        if not paths:
            del self.macs[ep]
            if self.exporter is not None:
                self.exporter.remote_seq.pop(ep, None)
            return [RemoteMacGone(vni, r.mac)]
        best = max(paths, key=lambda p: p.seq)  # the highest sequence number is where it lives now
        if self.exporter is not None:
            self.exporter.remote_seq[ep] = best.seq
        ips = frozenset(p.ip for p in paths if p.ip is not None and p.vtep == best.vtep)
        return [RemoteMac(vni, r.mac, best.vtep, best.peer, ips, best.seq)]

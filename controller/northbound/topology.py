"""The web view's topology per host, not per pair of hosts: each host with its tunnels toward its
peers counted by state (created, adopted, missing), and one host's tunnels in detail on request.

Per pair, 1,000 hosts made 999,000 rows: 1.3 s of the event loop and 72 MB a request. Here a
host's counts are kept between requests (`TopologyCache`) and recomputed only when its view
changed (a Host is a new object then) or the set of peers did (then only for the peers that came
or went); a recount costs a few set operations over that host's ports, and the requests that
must redo many slice the work (`refresh` stops after its budget; the caller yields and goes on).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from controller.core.read_model import ReadModel
from controller.model.state import Host

STATES = ("created", "adopted", "missing")


@dataclass
class _Entry:
    """One host's tunnel counts, valid for its Host object and the peers they were counted over."""

    host: Host
    own: dict[str, str]  # peer ip -> state of the host's own port toward it
    fallback: str  # state toward a peer without one
    counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def count(cls, r: ReadModel, host: Host, peers: frozenset[str]) -> _Entry:
        own, fallback = r.tunnel_states(host)
        e = cls(host, own, fallback)
        others = peers - {host.view.overlay_ip} if host.view.overlay_ip else frozenset()
        created = frozenset(ip for ip, st in own.items() if st == "created")
        adopted = frozenset(ip for ip, st in own.items() if st == "adopted")
        e.counts["created"] = len(created & others)
        e.counts["adopted"] = len(adopted & others)
        e.counts[fallback] += len(others) - e.counts["created"] - e.counts["adopted"]
        return e

    def adjust(self, came: frozenset[str], went: frozenset[str]) -> None:
        """The peers changed: only those that came or went are counted again."""
        me = self.host.view.overlay_ip
        if not me:
            return
        for ip in came - {me}:
            self.counts[self.own.get(ip, self.fallback)] += 1
        for ip in went - {me}:
            self.counts[self.own.get(ip, self.fallback)] -= 1

    def summary(self) -> dict:
        peers = sum(self.counts.values())
        return {"peers": peers, **{s: self.counts[s] for s in STATES}}


class TopologyCache:
    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.peers: frozenset[str] = frozenset()
        self.mode: tuple[str, str] | None = None

    def refresh(self, r: ReadModel, budget_s: float | None = None) -> bool:
        """Bring every host's counts up to date; False: the budget ran out first (call again)."""
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        mode = r.tunnel_mode()
        if mode != self.mode:  # another tunnel kind or ports mode: every count changes
            self.entries.clear()
            self.mode = mode
        peers = frozenset(ip for h in r.hosts.values() if (ip := h.view.overlay_ip))
        came, went = peers - self.peers, self.peers - peers
        if came or went:
            for e in self.entries.values():
                if e.host is r.hosts.get(e.host.id):
                    e.adjust(came, went)
            self.peers = peers
        for host_id in [h for h in self.entries if h not in r.hosts]:
            del self.entries[host_id]
        for host_id, host in r.hosts.items():
            e = self.entries.get(host_id)
            if e is None or e.host is not host:
                self.entries[host_id] = _Entry.count(r, host, peers)
                if deadline is not None and time.perf_counter() > deadline:
                    return False
        return True

    def hosts_json(self, r: ReadModel) -> list[dict]:
        """Every host with its channels and tunnel counts (after refresh())."""
        out = []
        for host_id in sorted(r.hosts):
            host = r.hosts[host_id]
            v = host.view
            e = self.entries.get(host_id)
            out.append({"id": host_id, "overlay_ip": v.overlay_ip,
                        "datapath_id": f"{v.datapath_id:016x}" if v.datapath_id is not None else None,
                        "connected": {"ovsdb": host.ovsdb_connected, "openflow": r.openflow_connected(host)},
                        "joined": not v.problems,
                        "tunnels": e.summary() if e is not None and e.host is host else None})
        return out


def tunnel_state(r: ReadModel, host_id: str, peer_ip: str) -> tuple[str, str | None]:
    """(state, port name) of the tunnel host_id uses toward peer_ip: created, adopted or missing
    (with tunnel_ports = flow, the one flow port, which its flows point at the peer)."""
    port = r.port_toward(r.hosts[host_id], peer_ip)
    if port is None:
        return "missing", None
    return ("created" if port.managed else "adopted"), port.name


def host_tunnels_json(r: ReadModel, host_id: str) -> dict:
    """One host's tunnel toward each peer (by peer id): the detail behind its counts."""
    me = r.hosts[host_id].view.overlay_ip
    tunnels = []
    if me:
        for peer_id in sorted(r.hosts):
            ip = r.hosts[peer_id].view.overlay_ip
            if peer_id != host_id and ip and ip != me:
                state, port = tunnel_state(r, host_id, ip)
                tunnels.append({"peer": peer_id, "port": port, "state": state})
    return {"host": host_id, "tunnels": tunnels}

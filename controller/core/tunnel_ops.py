"""The tunnel ports each host should have: one toward every peer (mesh, the article's), or one
per kind whose peer each flow sets (flow): `[overlay] tunnel_ports`, controller/pipeline/tunnel_ports.py.

Only what an event changes is checked: a host whose view changed is compared with every peer;
a host joining is one more peer for the others, so each of them looks at the new peers only,
in one transaction for all peers that joined since its last (TunnelBook.toward collects them).
One join costs O(hosts) with mesh ports, not a pass over every pair, and O(1) with flow ports
(one port reaches every peer: nothing is asked of the others).

The answers are typed operations (AddTunnelPorts, DeletePorts): the southbound writes them as
OVSDB transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from controller.core.index import Index
from controller.core.parts import Part, TunnelPart
from controller.model.ops import AddTunnelPorts, DeletePorts, Op
from controller.model.state import Host
from controller.pipeline import tunnel_ports
from controller.pipeline.settings import Settings

TUNNEL_RETRY_S = 10.0  # a tunnel port asked for but not seen by then is asked for again


class TunnelBook:
    """What the core asked of the hosts' OVSDB about tunnel ports, and what it still has to ask."""

    def __init__(self, ix: Index) -> None:
        self.ix = ix
        self.pending: dict[tuple[str, str], float] = {}  # (host, port name) -> asked at
        # host -> peers that joined since, each with when: their tunnel ports are asked for in drain,
        # so a burst of joins costs each host one transaction, not one per peer
        self.toward: dict[str, dict[str, float]] = {}
        self.forgotten_ips: set[str] = set()  # hosts an operator removed: our ports to them go
        # host -> ports to remove once its switch sends out of them no more (Core.drain), and whether
        # the flows that still did were recomputed once already
        self.retiring: dict[str, tuple[DeletePorts, bool]] = {}

    def retire(self, op: DeletePorts) -> None:
        """Ports to remove, once nothing on the host's switch sends out of them."""
        have = self.retiring.get(op.system_id)
        if have is not None:
            op = replace(op, port_uuids=tuple(sorted(set(op.port_uuids) | set(have[0].port_uuids))))
        self.retiring[op.system_id] = (op, False)

    def view_changed(self, s: Settings, old: Host | None, host: Host, new_peer: bool, now: float) -> list[Op]:
        """The tunnel ports a host's new OVSDB view calls for, on it and (via drain) on its peers."""
        view = host.view
        if old is None or (old.view.bridge_uuid, old.view.overlay_ip, old.ovsdb_connected) != (
                view.bridge_uuid, view.overlay_ip, True):
            ops = self.ops(s, now, [host])  # toward every peer
        elif s.tunnel_ports.holds_other(host.view, s.tunnel_type):  # switching kind or mode: the old ports go
            # once the new are up
            ops = self.ops(s, now, [host])
        else:  # only its ports changed: forget what was asked for and came; ask again for what went
            ops = []
            for name in set(host.tunnels_by_name) - set(old.tunnels_by_name):
                self.pending.pop((host.id, name), None)
            for gone in set(old.tunnel_remotes) - set(host.tunnel_remotes):
                peer = self.ix.peers.get(self.ix.host_by_ip.get(gone[0], ""))
                if peer is not None:
                    ops += self.ops(s, now, [host], toward=[peer])
        if new_peer and s.tunnel_ports.per_peer:  # one more port on everyone else: asked for in
            for other in self.ix.hosts:  # drain, one transaction per host
                if other != host.id:
                    self.toward.setdefault(other, {})[host.id] = now
        return ops

    def parts_changed(self, old: Host, host: Host, placed_on: Callable[[Host], set[int]]) -> set[Part] | None:
        """Tunnel ports came or went: their classify flows, and whatever leads to those peers
        (None: the flow-based port came, went or got its ofport, and everything uses it)."""
        was, now = old.tunnels_by_name, host.tunnels_by_name
        diff = [p for name, p in now.items() if was.get(name) != p]
        diff += [p for name, p in was.items() if name not in now or now[name] != p]
        if tunnel_ports.reaches_every_peer(diff):
            return None
        changed = {p.remote_ip for p in diff}
        peers = [self.ix.host_by_ip[ip] for ip in changed if ip in self.ix.host_by_ip]
        placed = placed_on(host)
        parts: set[Part] = {TunnelPart(p.name) for p in diff}
        for peer in peers:
            parts |= placed & placed_on(self.ix.peers[peer])  # flood buckets toward it
            parts |= {k for k in self.ix.eps_by_host.get(peer, ()) if k[0] in placed}
        return parts

    def retry_overdue(self, s: Settings, now: float) -> list[Op]:
        """Tunnel ports asked for but never seen (TUNNEL_RETRY_S): asked for again."""
        overdue = {h for (h, _), asked in self.pending.items() if now - asked >= TUNNEL_RETRY_S}
        return self.ops(s, now, [self.ix.hosts[h] for h in sorted(overdue) if h in self.ix.hosts])

    def ops(self, s: Settings, now: float, hosts: list[Host], toward: list[Host] | None = None) -> list[Op]:
        """Create the missing tunnel ports on these hosts (toward every peer, or only those `toward`),
        and remove ours toward forgotten hosts."""
        kind, mode = s.tunnel_type, s.tunnel_ports
        if not mode.per_peer:  # the peers do not matter (and going through them all made joins O(hosts))
            peers = {}
        elif toward is not None:
            peers = {h.id: h.view.overlay_ip for h in toward if h.view.overlay_ip}
        else:
            peers = {h.id: h.view.overlay_ip for h in self.ix.peers.values() if h.view.overlay_ip}
        ops: list[Op] = []
        for host in hosts:
            view = host.view
            if toward is None:
                for name in host.tunnels_by_name:
                    self.pending.pop((host.id, name), None)
            if not (host.ovsdb_connected and view.bridge_uuid and view.overlay_ip):
                continue
            peer_ips = [ip for peer_id, ip in sorted(peers.items()) if peer_id != host.id and ip != view.overlay_ip]
            missing = []
            for ip in mode.missing(host, kind, peer_ips):  # mesh: one per peer; flow: one in all
                name = tunnel_ports.port_name(kind, ip)
                asked = self.pending.get((host.id, name))
                if asked is not None and now - asked < TUNNEL_RETRY_S:
                    continue
                self.pending[(host.id, name)] = now
                missing.append(ip)
            if missing:
                ops.append(AddTunnelPorts(host.id, view.bridge_uuid, kind, view.overlay_ip, tuple(missing),
                                          f"tunnels to {missing}"))
            if toward is not None:
                continue
            stale = {p.port_uuid for p in view.tunnels if p.managed and p.remote_ip in self.forgotten_ips}
            stale |= {p.port_uuid for p in mode.replaced(view, kind, peer_ips)}
            stale.discard("")
            if stale:
                ops.append(DeletePorts(host.id, view.bridge_uuid, tuple(sorted(stale)),
                                       "remove tunnels to forgotten hosts or of another kind or mode"))
        return ops

    def for_joined(self, s: Settings, deadline: float | None) -> list[Op]:
        """One transaction per host for the tunnels toward the peers that joined since its last
        (self.toward), until the deadline."""
        ops: list[Op] = []
        hosts = self.ix.hosts
        while self.toward and (deadline is None or time.perf_counter() < deadline):
            host_id, peers = self.toward.popitem()
            host = hosts.get(host_id)
            toward = [hosts[p] for p in sorted(peers) if p in hosts]
            if host is not None and toward:
                ops += self.ops(s, max(peers.values()), [host], toward=toward)
        return ops

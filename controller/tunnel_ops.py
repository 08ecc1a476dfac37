"""The tunnel ports each host should have: one toward every peer (mesh, the article's), or one
per kind whose peer each flow sets (flow): `[overlay] tunnel_ports`, controller/tunnel_ports.py.

Only what an event changes is checked: a host whose view changed is compared with every peer;
a host joining is one more peer for the others, so each of them looks at the new peers only,
in one transaction for all peers that joined since its last (core.py collects them).
One join costs O(hosts), not a pass over every pair.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from controller import ovsdb_model as om
from controller.ops import Op, OvsdbTransact
from controller.state import Host

if TYPE_CHECKING:
    from controller.core import Core

TUNNEL_RETRY_S = 10.0  # a tunnel port asked for but not seen by then is asked for again


def tunnel_ops(core: Core, now: float, hosts: list[Host], toward: list[Host] | None = None) -> list[Op]:
    """Create the missing tunnel ports on these hosts (toward every peer, or only those `toward`),
    and remove ours toward forgotten hosts."""
    kind, mode = core.settings.tunnel_type, core.settings.tunnel_ports
    if toward is not None:
        peers = {h.id: h.view.overlay_ip for h in toward if h.view.overlay_ip}
    else:
        peers = {h.id: h.view.overlay_ip for h in core.ix.peers.values() if h.view.overlay_ip}
    ops: list[Op] = []
    for host in hosts:
        view = host.view
        if toward is None:
            for name in host.tunnels_by_name:
                core.pending_tunnels.pop((host.id, name), None)
        if not (host.ovsdb_connected and view.bridge_uuid and view.overlay_ip):
            continue
        peer_ips = [ip for peer_id, ip in sorted(peers.items()) if peer_id != host.id and ip != view.overlay_ip]
        missing = []
        for ip in mode.missing(host, kind, peer_ips):  # mesh: one per peer; flow: one in all
            name = om.tunnel_name(kind, ip)
            asked = core.pending_tunnels.get((host.id, name))
            if asked is not None and now - asked < TUNNEL_RETRY_S:
                continue
            core.pending_tunnels[(host.id, name)] = now
            missing.append(ip)
        if missing:
            ops.append(OvsdbTransact(host.id, om.add_tunnels_txn(
                view.bridge_uuid, kind, view.overlay_ip, missing), f"tunnels to {missing}"))
        if toward is not None:
            continue
        stale = {p.port_uuid for p in view.tunnels if p.managed and p.remote_ip in core.forgotten_ips}
        stale |= {p.port_uuid for p in mode.replaced(view, kind, peer_ips)}
        stale.discard("")
        if stale:
            ops.append(OvsdbTransact(host.id, om.del_ports_txn(view.bridge_uuid, sorted(stale)),
                                     "remove tunnels to forgotten hosts or of another kind or mode"))
            ops += core.purge_learned_on(host)
    return ops


def tunnels_for_joined(core: Core, deadline: float | None) -> list[Op]:
    """One transaction per host for the tunnels toward the peers that joined since its last
    (core.tunnels_toward), until the deadline."""
    ops: list[Op] = []
    while core.tunnels_toward and (deadline is None or time.perf_counter() < deadline):
        host_id, peers = core.tunnels_toward.popitem()
        host = core.hosts.get(host_id)
        toward = [core.hosts[p] for p in sorted(peers) if p in core.hosts]
        if host is not None and toward:
            ops += tunnel_ops(core, max(peers.values()), [host], toward=toward)
    return ops

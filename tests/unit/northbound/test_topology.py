"""The web view's topology per host: each host's tunnel counts, kept between reads, equal what a pass
over every pair of hosts finds, through hosts joining and leaving, ports made, adopted, coming up
and going, and the tunnel_ports mode changing; a recount that has much to redo goes in slices."""

import random
from collections import Counter
from dataclasses import replace

from controller.model.state import HostView, TunnelPort
from controller.northbound.topology import TopologyCache, host_tunnels_json, tunnel_state
from controller.pipeline import tunnel_kinds
from controller.shell.config import defaults
from tests.unit.world import ip_of, world


def per_pair(r) -> dict[str, dict]:
    """The old way: every ordered pair of hosts."""
    out = {}
    for h in sorted(r.hosts):
        me = r.hosts[h].view.overlay_ip
        counts = Counter()
        if me:
            ips = {r.hosts[p].view.overlay_ip for p in r.hosts if p != h} - {None, me}
            counts.update(tunnel_state(r, h, ip)[0] for ip in ips)
        out[h] = {"peers": sum(counts.values()), **{s: counts[s] for s in ("created", "adopted", "missing")}}
    return out


def cached(cache, r, budget=None) -> dict[str, dict]:
    while not cache.refresh(r, budget):
        pass
    return {h["id"]: h["tunnels"] for h in cache.hosts_json(r)}


def test_the_counts_follow_every_change_as_a_pass_over_every_pair_would():
    rnd = random.Random(26)
    core = world(5, tenants=())
    cache = TopologyCache()
    assert cached(cache, core.read) == per_pair(core.read) == {
        f"h{i}": {"peers": 4, "created": 4, "adopted": 0, "missing": 0} for i in range(1, 6)}
    flow_name = tunnel_kinds.get("vxlan").flow_port_name
    for step in range(300):
        hosts = sorted(core.hosts)
        what = rnd.random()
        if what < 0.1 and len(hosts) < 9:  # a host joins
            i = max(int(h[1:]) for h in hosts) + 1
            core.host_view(HostView(f"h{i}", ip_of(i), datapath_id=i, patch_ofport=1), now=step)
        elif what < 0.15 and len(hosts) > 2:  # a host is forgotten
            core.ovsdb_down(hosts[-1])
            core.forget_host(hosts[-1], now=step)
        elif what < 0.2:  # the mode changes (a reload)
            ports = rnd.choice(["mesh", "flow"])
            core.retune_tunnels(defaults(tunnel_ports=ports), now=step)
        else:  # a host's ports change: one made or adopted toward a peer, one goes, one comes up, the flow port
            h = rnd.choice(hosts)
            v = core.hosts[h].view
            tunnels = list(v.tunnels)
            peer_ip = ip_of(rnd.randint(1, 10))
            pick = rnd.random()
            if pick < 0.4:
                tunnels.append(TunnelPort(f"p{step}", "vxlan", peer_ip, rnd.choice([None, 100 + step]),
                                          rnd.random() < 0.7))
            elif pick < 0.7 and tunnels:
                tunnels.pop(rnd.randrange(len(tunnels)))
            elif pick < 0.85:
                tunnels.append(TunnelPort(flow_name, "vxlan", "flow", 99, True))
            else:
                tunnels.append(TunnelPort(f"g{step}", "gre", peer_ip, 200 + step, True))  # another kind
            core.host_view(replace(v, tunnels=tuple(tunnels)), now=step)
        r = core.read
        assert cached(cache, r, budget=0 if step % 7 == 0 else None) == per_pair(r), step
        detail = {h: Counter(t["state"] for t in host_tunnels_json(r, h)["tunnels"]) for h in r.hosts}
        assert all(detail[h] == Counter({k: v for k, v in c.items() if k != "peers" and v})
                   for h, c in per_pair(r).items())


def test_a_read_recounts_only_what_changed():
    core = world(4, tenants=())
    cache = TopologyCache()
    cached(cache, core.read)
    entries = dict(cache.entries)
    v = core.hosts["h2"].view
    core.host_view(replace(v, tunnels=v.tunnels[:1]), now=1.0)
    cached(cache, core.read)
    assert [h for h in entries if cache.entries[h] is not entries[h]] == ["h2"]
    assert cache.entries["h2"].counts["missing"] == 2

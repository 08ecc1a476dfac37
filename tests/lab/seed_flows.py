"""The article's br1 flow tables (the original article this project started from), installed by hand with ovs-ofctl.

Port 1 of br1 is the patch trunk to br0; the tunnel ports are passed in.
The two typos of the article (`priority=1table=21dl_vlan=1`) are fixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lab import Host, Lab

# local VLAN on br0 -> tunnel ID on the wire, as in the article's example
ARTICLE_TENANTS: Mapping[int, int] = {1: 0x1, 2: 0x2}

LEARN = (
    "learn(table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],"
    "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
    "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[])"
)


def seed_flows(
    tunnel_ofports: Sequence[int],
    tenants: Mapping[int, int] = ARTICLE_TENANTS,
) -> list[str]:
    """The seed pipeline as ovs-ofctl flow lines."""
    flows = ["table=0,priority=1,in_port=1,actions=resubmit(,1)"]
    flows += [f"table=0,priority=1,in_port={p},actions=resubmit(,3)"
              for p in tunnel_ofports]
    flows += [
        "table=0,priority=0,actions=drop",
        "table=1,priority=1,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,"
        "actions=resubmit(,20)",
        "table=1,priority=1,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,"
        "actions=resubmit(,21)",
        "table=2,priority=0,actions=drop",
    ]
    flows += [
        f"table=3,priority=1,tun_id={tun:#x},actions=mod_vlan_vid:{vlan},resubmit(,10)"
        for vlan, tun in tenants.items()
    ]
    flows += [
        "table=3,priority=0,actions=drop",
        f"table=10,priority=1,actions={LEARN},output:1",
        "table=20,priority=0,actions=resubmit(,21)",
    ]
    outputs = ",".join(f"output:{p}" for p in tunnel_ofports)
    flows += [
        f"table=21,priority=1,dl_vlan={vlan},actions=strip_vlan,"
        f"set_tunnel:{tun:#x},{outputs}"
        for vlan, tun in tenants.items()
    ]
    flows.append("table=21,priority=0,actions=drop")
    return flows


def install_seed_flows(
    host: Host,
    tunnel_ofports: Sequence[int] | None = None,
    tenants: Mapping[int, int] = ARTICLE_TENANTS,
) -> list[str]:
    """Replace br1's flows with the seed pipeline (all tunnel ports by default)."""
    if tunnel_ofports is None:
        tunnel_ofports = sorted(t["ofport"] for t in host.tunnel_ports().values())
    flows = seed_flows(tunnel_ofports, tenants)
    # one ofctl call: flows and deletion of the old ones land together
    host.ofctl("--bundle", "replace-flows", "br1", "-", input="\n".join(flows) + "\n")
    return flows


def hand_mesh(lab: Lab, hosts: Sequence[Host], tunnel_type: str) -> None:
    """Full mesh of hand-made tunnels among ``hosts`` (skips existing pairs)."""
    for a in hosts:
        have = {t["remote_ip"] for t in a.tunnel_ports().values()}
        for b in hosts:
            if b is not a and b.underlay_ip not in have:
                lab.add_hand_tunnel(a, b, tunnel_type)

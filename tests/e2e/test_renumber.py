"""Issue 22.1 on the real lab: a tenant renumbered several times in a row stays whole.

After each VNI change, in both tunnel_ports and both mac_learning modes: every blue and red pair
pings, with the VMs' neighbour caches warm and then flushed (ARP again); the endpoints keep their
IPs (controller mode); every switch holds as many of our flows as the controller believes, blue's
under the new VNI exactly as they were under the old one, none under an old one; and red, pinging
throughout, loses nothing.
"""

from __future__ import annotations

import pytest

from lab.netlab import wait_for
from lab.overlay import (
    PingStream,
    all_pairs,
    announce,
    controller_flows,
    flood_buckets,
    flush_neighbours,
    our_flows,
    reachable_pairs,
    tenant_shape,
)

VNIS = (5010, 5011, 5012)


def endpoints(ov, tenant: str) -> list[tuple]:
    return sorted((e["mac"], e["host"], tuple(e["ips"])) for e in ov.ctl.api.get(f"/v1/tenants/{tenant}/endpoints"))


def switches_agree(ov) -> bool:
    """Each switch holds as many of our flows as the controller believes it does."""
    believed = controller_flows(ov.ctl)
    return all(len(our_flows(h)) == believed.get(h.name) for h in ov.hosts)


@pytest.mark.parametrize("learning", ["controller", "learn"])
@pytest.mark.parametrize("ports", ["mesh", "flow"])
def test_a_tenant_renumbered_three_times_in_a_row_stays_whole(make_overlay, ports, learning):
    ov = make_overlay("vxlan", learning, tunnel_ports=ports)
    blue, red = ov.tenant_vms("blue"), ov.tenant_vms("red")
    announce(blue + red)
    assert reachable_pairs(blue) == all_pairs(blue) and reachable_pairs(red) == all_pairs(red)
    if learning == "controller":
        wait_for(lambda: len(endpoints(ov, "blue")) == 3 and all(ips for *_, ips in endpoints(ov, "blue")),
                 5, 0.05, "blue's VMs learned with their IPs")
    eps = endpoints(ov, "blue")
    wait_for(lambda: switches_agree(ov), 5, 0.05, "switches programmed")
    shape = {h.name: tenant_shape(h, 5001) for h in ov.hosts}
    assert all(shape.values())
    old = 5001
    with PingStream(red[0], red[1].ip) as red_pings, PingStream(blue[0], blue[1].ip) as blue_pings:
        for vni in VNIS:
            ov.ctl.api.request("PATCH", "/v1/tenants/blue", {"vni": vni})
            assert endpoints(ov, "blue") == eps  # carried over at once, with their IPs: nothing relearned
            wait_for(lambda vni=vni: switches_agree(ov) and all(
                tenant_shape(h, vni) == shape[h.name] for h in ov.hosts), 5, 0.05, f"blue's flows under {vni}")
            assert all(not tenant_shape(h, old) for h in ov.hosts)
            assert all(old not in flood_buckets(h) and vni in flood_buckets(h) for h in ov.hosts)
            warm = reachable_pairs(blue)  # the VMs' neighbour caches still hold each other's MACs
            flush_neighbours(blue + red)
            flushed = reachable_pairs(blue)  # every pair ARPs again
            assert (warm, flushed) == (all_pairs(blue), all_pairs(blue)), vni
            assert reachable_pairs(red) == all_pairs(red)
            assert endpoints(ov, "blue") == eps and switches_agree(ov)
            old = vni
        assert red_pings.running() and blue_pings.running()
    print(f"\n{ports}/{learning}: blue renumbered {VNIS}; echoes lost: red {len(red_pings.lost)} of "
          f"{red_pings.replies + len(red_pings.lost)}, blue {len(blue_pings.lost)} of "
          f"{blue_pings.replies + len(blue_pings.lost)}; endpoints kept: {eps}")
    assert red_pings.lost == []
    assert ov.ctl.api.get("/v1/counters").get("endpoints_carried", 0) == len(eps) * len(VNIS)

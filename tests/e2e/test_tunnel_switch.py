"""Issues 10 and 22.13 on the real lab: switching a running overlay between mesh and flow-based tunnel ports,
under a ping of the other tenant every 20 ms that runs before the switch starts and after it ends."""

import signal
import time

import pytest

from controller.model import tables as t
from controller.shell.startup import RECOVERY_WINDOW_S
from lab.netlab import wait_for
from lab.overlay import PingStream, all_pairs, announce, reachable_pairs

# Measured: each switch took 0.04-0.14 s (polled through ovs-vsctl on the three hosts) and lost 0-2
# echoes (20 ms of traffic each; 2 only flow -> mesh in learn mode).
SWITCH_BOUND_S, LOST_BOUND = 0.5, 3


def ports_are(h, ports: str) -> bool:
    """h's tunnel ports are exactly those of the mode (the old ones removed), all numbered."""
    got = h.tunnel_ports().values()
    if ports == "flow":
        return [p["remote_ip"] for p in got] == ["flow"] and all(p["ofport"] for p in got)
    return len(got) == 2 and all(p["remote_ip"] != "flow" and p["ofport"] for p in got)


@pytest.mark.parametrize("mode", ["controller", "learn"])
def test_switching_mesh_to_flow_and_back_live_costs_the_other_tenant_at_most_60_ms(make_overlay, mode):
    ov = make_overlay("vxlan", mode)
    blue, red = ov.tenant_vms("blue"), ov.tenant_vms("red")
    assert reachable_pairs(blue) == all_pairs(blue) and reachable_pairs(red) == all_pairs(red)
    assert all(ports_are(h, "mesh") for h in ov.hosts)
    for source, target in (("mesh", "flow"), ("flow", "mesh")):
        with PingStream(red[0], red[1].ip) as pings:  # replies before the reload, and after the switch
            started = time.monotonic()
            ov.ctl.reload(tunnel_ports=target)
            for h in ov.hosts:
                wait_for(lambda h=h, target=target: ports_are(h, target), 5.0, 0.02, f"{h.name} switched to {target}")
            took = time.monotonic() - started
            assert pings.running()
        lost = len(pings.lost)
        print(f"\n{mode}: {source} -> {target}: red lost {lost} of {pings.replies + lost} echoes {pings.lost}; "
              f"switched in {took:.2f} s")
        assert lost <= LOST_BOUND and took <= SWITCH_BOUND_S, (lost, took)
        assert reachable_pairs(blue) == all_pairs(blue)
        assert reachable_pairs(red) == all_pairs(red)
    assert "config reload refused" not in ov.ctl.log_tail(200)


def test_a_switch_during_the_recovery_window_keeps_an_endpoint_not_recovered_yet_reachable(make_overlay):
    """Issue 22.13: after a restart, the other hosts keep their entries for an endpoint until its own
    host's switch tells where it is (the recovery window, 10 s). b2's source entry idled out while
    the controller was down (its flow-removed message went nowhere: removed here by hand), so b2 is
    not recovered and h1 keeps its entry for b2. A switch to flow ports then removed the mesh port
    that entry sent out of: b1 -> b2 was dark until the window ended ('healed by itself' after
    about 8 s, when the entry went and b1's frames were flooded)."""
    ov = make_overlay("vxlan", "controller")
    blue = ov.tenant_vms("blue")
    announce(blue)
    wait_for(lambda: len(ov.ctl.api.get("/v1/tenants/blue/endpoints")) == 3, 5, 0.05, "blue's VMs learned")
    b1, b2 = blue[0], blue[1]
    assert b1.ping(b2.ip)  # b1 knows b2's MAC from now on: it sends unicast, as a running VM does
    ov.ctl.stop(signal.SIGKILL)
    ov.hosts[1].ofctl("del-flows", "br1", f"table={t.SRC_MAC},dl_src={b2.mac}")
    ov.ctl.start()
    started = time.monotonic()

    def back() -> bool:
        connected = all(h["connected"]["openflow"] for h in ov.ctl.api.get("/v1/hosts"))
        return connected and {e["mac"] for e in ov.ctl.api.get("/v1/tenants/blue/endpoints")} == {
            blue[0].mac, blue[2].mac}
    wait_for(back, 5, 0.02, "the hosts back, b1 and b3 recovered (b2 not)")
    ov.ctl.reload(tunnel_ports="flow")
    for h in ov.hosts:
        wait_for(lambda h=h: ports_are(h, "flow"), 5, 0.02, f"{h.name} switched to flow")
    switched = time.monotonic() - started
    wait_for(lambda: b1.ping(b2.ip, timeout=0.2), 1.0, 0.0, "b1 -> b2 within 1 s of the switch")
    reached = time.monotonic() - started
    print(f"\nswitched {switched:.2f} s after the restart; b1 reached b2 {reached:.2f} s after it")
    assert reached < RECOVERY_WINDOW_S  # inside the window, where the kept entry was in the way
    assert reachable_pairs(blue) == all_pairs(blue)
    red = ov.tenant_vms("red")
    assert reachable_pairs(red) == all_pairs(red)

"""Issue 2 on the real lab: the article's 3 hosts x 2 tenants, over every tunnel kind, both learning modes."""

import pytest

from controller.pipeline import tunnel_kinds as tunnels
from controller.pipeline import tunnel_ports
from lab.controller import ApiError
from lab.netlab import wait_for
from lab.overlay import (
    TENANTS,
    PingStream,
    all_pairs,
    announce,
    flood_buckets,
    is_flow_based,
    port_toward,
    reachable_pairs,
)

MODES = ["controller", "learn"]
PORTS = list(tunnel_ports.MODES)  # mesh: a port per peer; flow: one remote_ip=flow port per kind
KINDS_AND_PORTS = [pytest.param(k, p, id=f"{k}-{p}") for p in PORTS for k in tunnels.NAMES]


def assert_tenant_isolated(ov, talker: str, listener: str):
    """Every talker pair pings, and not one frame reaches the listener tenant's VMs meanwhile,
    while a capture in a talker VM on another host, in the same window, does see the pings."""
    vms = ov.tenant_vms(talker)
    caps = [vm.capture().start() for vm in ov.tenant_vms(listener)]
    witness = vms[-1].capture().start()  # the positive control: these captures can see frames
    try:
        assert reachable_pairs(vms) == all_pairs(vms)
    finally:
        seen = {cap.ns: cap.stop() for cap in caps}
        control = witness.stop()
    assert [fr for fr in control if vms[0].mac in fr and "echo request" in fr], control
    assert all(frames == [] for frames in seen.values()), seen


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("tunnel_type", "ports"), KINDS_AND_PORTS)
def test_same_tenant_pairs_ping_and_tenants_with_the_same_ips_stay_isolated(make_overlay, tunnel_type, ports, mode):
    ov = make_overlay(tunnel_type, mode, tunnel_ports=ports)
    hosts = ov.ctl.api.get("/v1/hosts")
    assert all(p["type"] == tunnel_type for h in hosts for p in h["tunnels"])
    assert all(len(h["tunnels"]) == (1 if ports == "flow" else 2) for h in hosts), hosts
    assert_tenant_isolated(ov, "blue", "red")
    assert_tenant_isolated(ov, "red", "blue")


@pytest.mark.parametrize(("tunnel_type", "ports"), KINDS_AND_PORTS)
def test_tenants_with_the_same_macs_stay_isolated(make_overlay, tunnel_type, ports):
    ov = make_overlay(tunnel_type, "controller", same_macs=True, tunnel_ports=ports)
    assert ov.vms[("blue", 1)].mac == ov.vms[("red", 1)].mac
    assert_tenant_isolated(ov, "blue", "red")
    assert_tenant_isolated(ov, "red", "blue")


@pytest.mark.parametrize("ports", PORTS)
@pytest.mark.parametrize("mode", MODES)
def test_a_host_joining_later_reaches_the_others_with_nothing_done_on_them(make_overlay, mode, ports):
    ov = make_overlay("vxlan", mode, tunnel_ports=ports)
    blue = ov.tenant_vms("blue")
    assert reachable_pairs(blue) == all_pairs(blue)
    before = {h.name: h.tunnel_ports() for h in ov.hosts}
    # Traffic between the first hosts keeps flowing while the fourth joins: not one echo lost.
    with PingStream(blue[0], blue[1].ip) as stream:
        ov.add_host()
        ov.wait_meshed()
        # the join is complete once every old host floods blue to the newcomer too
        for h in ov.hosts[:3]:
            wait_for(lambda h=h: flood_buckets(h).get(TENANTS["blue"][0]) == 3, 5.0, 0.05,
                     f"{h.name} floods blue to 3 hosts")
        assert stream.running(), "the pings ended before the join had completed"
    assert stream.lost == [] and stream.replies > 0, (stream.lost, stream.replies)
    blue = ov.tenant_vms("blue")
    assert reachable_pairs(blue) == all_pairs(blue)
    for h in ov.hosts[:3]:
        after = h.tunnel_ports()
        assert {k: v for k, v in after.items() if k in before[h.name]} == before[h.name]
        assert len(after) == (1 if ports == "flow" else 3)


@pytest.mark.parametrize("ports", PORTS)
@pytest.mark.parametrize("mode", MODES)
def test_deleting_a_tenant_removes_its_flows_and_its_connectivity(make_overlay, mode, ports):
    ov = make_overlay("gre", mode, tunnel_ports=ports)
    blue, red = ov.tenant_vms("blue"), ov.tenant_vms("red")
    assert reachable_pairs(blue) == all_pairs(blue)
    vni = TENANTS["blue"][0]

    def blues(h) -> dict[str, bool]:
        """Which of blue's traces h holds: its VNI's flows, flows to its flood group, the group."""
        flows = h.ofctl("dump-flows", "br1")
        return {"tun_id": f"tun_id={vni:#x}" in flows, "to group": f"group:{vni}" in flows,
                "group": f"group_id={vni}" in h.ofctl("dump-groups", "br1")}
    nothing = {"tun_id": False, "to group": False, "group": False}
    # present before: "absent after" proves nothing if the patterns never match
    assert {h.name: blues(h) for h in ov.hosts} == {h.name: dict.fromkeys(nothing, True) for h in ov.hosts}
    ov.ctl.api.delete("/v1/tenants/blue")
    for h in ov.hosts:
        wait_for(lambda h=h: blues(h) == nothing, 1.0, 0.05, f"blue's flows gone from {h.name}")
    assert reachable_pairs(blue, deadline=1.0) == []
    assert reachable_pairs(red) == all_pairs(red)


@pytest.mark.parametrize(("tunnel_type", "ports"), [("vxlan", "mesh"), ("vxlan", "flow"), ("geneve", "flow")])
def test_ofproto_trace_agrees_with_the_pipeline(make_overlay, tunnel_type, ports):
    ov = make_overlay(tunnel_type, "controller", tunnel_ports=ports)
    b1, b2 = ov.vms[("blue", 1)], ov.vms[("blue", 2)]
    announce([b1, b2])
    wait_for(lambda: len(ov.ctl.api.get("/v1/tenants/blue/endpoints")) == 2, 2.0, 0.05, "b1, b2 learned")
    wait_for(lambda: b2.mac in ov.hosts[0].ofctl("dump-flows", "br1", "table=20"), 2.0, 0.05, "b2 on h1")
    h1, h2 = ov.hosts[0], ov.hosts[1]
    vni, vlan = TENANTS["blue"]
    # From br0 (patch port 1), tagged with blue's VLAN, to b2's MAC: one copy, to h2, with blue's VNI.
    out = h1.appctl("ofproto/trace", "br1",
                    f"in_port=1,dl_vlan={vlan},dl_src={b1.mac},dl_dst={b2.mac},dl_type=0x0800")
    actions = out.split("Datapath actions:")[1].strip()
    assert actions.count("tnl_push") == 1, out
    assert f"vni={vni:#x}" in actions and f"dst={h2.underlay_ip}," in actions, out
    assert is_flow_based(h1) == (ports == "flow")
    # From h2's tunnel with red's VNI: tagged with red's VLAN, out to br0 (patch), nowhere else.
    port = port_toward(h1, h2)
    red_vni, red_vlan = TENANTS["red"]
    out = h1.appctl("ofproto/trace", "br1", f"in_port={port},tun_id={red_vni:#x},tun_src={h2.underlay_ip},"
                    "dl_src=02:00:00:00:02:02,dl_dst=ff:ff:ff:ff:ff:ff")
    actions = out.split("Datapath actions:")[1].strip()
    assert f"push_vlan(vid={red_vlan}" in actions and "tnl_push" not in actions, out
    # An unknown VNI is dropped.
    out = h1.appctl("ofproto/trace", "br1", f"in_port={port},tun_id=0x999,dl_dst=ff:ff:ff:ff:ff:ff")
    assert out.split("Datapath actions:")[1].strip() == "drop", out


@pytest.mark.parametrize("ports", PORTS)
def test_a_controller_restart_keeps_tenants_and_restores_the_overlay(make_overlay, ports):
    ov = make_overlay("vxlan", "controller", tunnel_ports=ports)
    blue = ov.tenant_vms("blue")
    assert reachable_pairs(blue) == all_pairs(blue)
    ov.ctl.stop()
    ov.ctl.start()  # same database, same ports
    assert [t["name"] for t in ov.ctl.api.get("/v1/tenants")] == ["blue", "red"]
    ov.wait_meshed(timeout=30)
    for tenant in TENANTS:
        vms = ov.tenant_vms(tenant)
        assert reachable_pairs(vms) == all_pairs(vms)


@pytest.mark.parametrize("ports", PORTS)
def test_deleting_a_host_that_left_removes_the_tunnels_toward_it(make_overlay, ports):
    ov = make_overlay("gre", "controller", tunnel_ports=ports)
    h1, h2, h3 = ov.hosts
    with pytest.raises(ApiError) as refused:
        ov.ctl.api.delete("/v1/hosts/h3")
    assert refused.value.status == 409  # still connected: it would come straight back
    ov.lab.remove_host(h3)
    wait_for(lambda: not next(h for h in ov.ctl.api.get("/v1/hosts") if h["id"] == "h3")["connected"]["ovsdb"],
             5.0, 0.05, "h3 seen gone")
    ov.ctl.api.delete("/v1/hosts/h3")
    for h in (h1, h2):  # no port toward h3, and (flow-based ports) no flow or bucket sets it as tun_dst
        wait_for(lambda h=h: all(p["remote_ip"] != h3.underlay_ip for p in h.tunnel_ports().values())
                 and h3.underlay_ip not in h.ofctl("dump-groups", "br1") + h.ofctl("dump-flows", "br1"),
                 2.0, 0.05, f"{h.name}'s tunnel to h3 removed")
        assert "h3" not in [x["id"] for x in ov.ctl.api.get("/v1/hosts")]
    blue = [ov.vms[("blue", 1)], ov.vms[("blue", 2)]]
    assert reachable_pairs(blue) == all_pairs(blue)


@pytest.mark.parametrize("ports", PORTS)
def test_changing_a_vni_reprograms_every_host_without_disturbing_the_other_tenant(make_overlay, ports):
    ov = make_overlay("vxlan", "controller", tunnel_ports=ports)
    blue, red = ov.tenant_vms("blue"), ov.tenant_vms("red")
    assert reachable_pairs(blue) == all_pairs(blue) and reachable_pairs(red) == all_pairs(red)
    r1, r2 = red[0], red[1]
    # red keeps pinging (every 20 ms) until blue has moved to another VNI on every host
    with PingStream(r1, r2.ip) as stream:
        ov.ctl.api.put("/v1/tenants/blue", {"vni": 6001, "vlan": TENANTS["blue"][1]})
        for h in ov.hosts:
            wait_for(lambda h=h: "tun_id=0x1771" in h.ofctl("dump-flows", "br1", "table=3")
                     and "tun_id=0x1389" not in h.ofctl("dump-flows", "br1"), 1.0, 0.05, f"{h.name} uses VNI 6001")
        assert reachable_pairs(blue) == all_pairs(blue)
        assert stream.running(), "red's pings ended before the change had completed"
    assert stream.lost == [] and stream.replies > 0, (stream.lost, stream.replies)

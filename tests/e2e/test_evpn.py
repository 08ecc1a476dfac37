"""Issue 14 on the real lab: the controller speaks BGP EVPN with an FRR leaf (kernel VXLAN), VXLAN.

One lab per tunnel_ports mode (building FRR, two OVS hosts and the controller takes a while on
2 cores): h1 and h2 with a blue and a red VM each (192.168.1.x in both tenants), and the leaf
with one host per tenant behind it, both 192.168.1.50. The tests run in order and each leaves
the lab as the next expects; every figure they measure is printed.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from controller.bgp.external import vtep_id
from lab.controller import Controller
from lab.frr import Leaf, add_leaf
from lab.netlab import Lab, free_tcp_ports, wait_for
from lab.overlay import TENANTS, Overlay, announce, create_tenants, frames_of
from tests.e2e.test_webview import browser, rows, wait  # noqa: F401 (browser: the fixture)

ASN = 65000
HOLD = 3  # seconds: the leaf's BGP hold time (negotiated: the lower of the two sides)
IDLE = 8  # seconds: the controller's mac_idle_timeout, so the aging test stays short
FAR_IP = "192.168.1.50"
FAR_MAC = {"blue": "02:00:00:00:05:01", "red": "02:00:00:00:05:02"}


class World:
    def __init__(self, lab: Lab, ctl: Controller, ov: Overlay, leaf: Leaf) -> None:
        self.lab, self.ctl, self.ov, self.leaf = lab, ctl, ov, leaf
        self.far = {}  # tenant -> the host behind the leaf

    def endpoints(self, tenant: str) -> dict[str, dict]:
        return {e["mac"]: e for e in self.ctl.api.get(f"/v1/tenants/{tenant}/endpoints")}

    def routes(self, **match) -> list[dict]:
        return [r for r in self.leaf.evpn_routes() if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module", params=["mesh", "flow"])
def w(request):
    lab = Lab()
    ctl = None
    try:
        bgp_port, = free_tcp_ports(1, lab.controller_ip)
        leaf = add_leaf(lab, "leaf", asn=ASN, peer_ip=lab.controller_ip, peer_as=ASN, peer_port=bgp_port, hold=HOLD)
        ctl = Controller(lab.controller_ip, tunnel_ports=request.param, extra={
            "overlay": {"mac_idle_timeout": IDLE},
            "bgp": {"local_as": ASN, "router_id": lab.controller_ip, "listen_host": lab.controller_ip,
                    "listen_port": bgp_port, "neighbors": f"{leaf.mgmt_ip}:{ASN}"}})
        ctl.start()
        create_tenants(ctl)
        ov = Overlay(lab, ctl)
        for _ in range(2):
            ov.add_host()
        ov.wait_meshed(settle=True)
        world = World(lab, ctl, ov, leaf)
        for tenant, (vni, _vlan) in TENANTS.items():
            leaf.add_vni(vni)
            world.far[tenant] = leaf.add_host(f"{tenant[0]}far", vni, f"{FAR_IP}/24", FAR_MAC[tenant])
        started = time.monotonic()
        wait_for(lambda: leaf.session_up(lab.controller_ip), 30, 0.2,
                 f"BGP session up\n{leaf.vtysh('show bgp l2vpn evpn summary', check=False)}\n{ctl.log_tail()}")
        print(f"\n[{request.param}] BGP session established {time.monotonic() - started:.1f} s after the leaf's VNIs")
        for h in ov.hosts:  # the leaf's underlay MAC, as add_host presets a peer's (lab/README.md)
            h.set_neighbour(leaf.underlay_ip, leaf.underlay_mac)
        yield world
    finally:
        if ctl is not None:
            print(f"--- controller log ({ctl.log_path})\n{ctl.log_tail(40)}")
            ctl.stop()
        lab.close()
        if ctl is not None:
            shutil.rmtree(ctl.workdir, ignore_errors=True)


def announce_far(w: World) -> None:
    """What a host behind a ToR does when it boots: a gratuitous ARP (the leaf's bridge learns its
    MAC) and, talking to its gateway, an entry in the SVI's neighbour table (FRR adds its IP)."""
    for tenant, vm in w.far.items():
        vm.exec(["arping", "-U", "-c", "1", "-w", "1", "-I", "eth0", vm.ip], check=False)
        w.leaf.neighbour(vm, TENANTS[tenant][0])


def test_vms_and_hosts_behind_the_leaf_reach_each_other_and_the_vni_keeps_tenants_apart(w: World):
    announce(list(w.ov.vms.values()))
    announce_far(w)  # (arping waits 1 s for each host: the clock starts once the last has announced)
    started = time.monotonic()
    for tenant in TENANTS:
        wait_for(lambda t=tenant: w.endpoints(t).get(FAR_MAC[t], {}).get("external"), 15, 0.1,
                 f"{tenant}'s host behind the leaf imported\n{w.ctl.log_tail()}")
    imported = time.monotonic() - started
    far = w.endpoints("blue")[FAR_MAC["blue"]]
    assert far["external"] == {"vtep": w.leaf.underlay_ip, "peer": w.leaf.mgmt_ip}, far
    assert far["host"] == vtep_id(w.leaf.underlay_ip) and far["ips"] == [FAR_IP], far
    print(f"leaf hosts imported as external endpoints {imported:.1f} s after the last announced itself")
    for talker, listener in (("blue", "red"), ("red", "blue")):
        vms = w.ov.tenant_vms(talker)
        quiet = [vm.capture().start() for vm in w.ov.tenant_vms(listener)] + [w.far[listener].capture().start()]
        witness = w.far[talker].capture().start()  # the positive control: this capture sees the pings
        try:
            for vm in vms:
                assert wait_for(lambda vm=vm: vm.ping(FAR_IP, timeout=1), 10, 0.1, f"{vm.name} -> {FAR_IP}")
                assert w.far[talker].ping(vm.ip, count=2, timeout=1), f"{talker} far -> {vm.name}"
        finally:
            seen = {cap.ns: cap.stop() for cap in quiet}
            control = witness.stop()
        mine = {vm.mac for vm in vms} | {FAR_MAC[talker]}
        assert [fr for fr in control if vms[0].mac in fr and "echo request" in fr], control
        leaked = {ns: [fr for fr in frames if any(m in fr for m in mine)] for ns, frames in seen.items()}
        assert all(not frames for frames in leaked.values()), leaked
        print(f"{talker}: both VMs <-> its leaf host {FAR_IP}: ok; frames of {talker} seen in {listener}: 0 "
              f"(control capture in {talker}: {len(control)} frames)")


def test_the_web_view_shows_the_leaf_hosts_as_external_with_their_peer(w: World, browser):  # noqa: F811
    browser.get(f"http://127.0.0.1:{w.ctl.rest_port}/#tenant=blue")
    want = f"{vtep_id(w.leaf.underlay_ip)} (external, via BGP peer {w.leaf.mgmt_ip})"
    got = wait(browser, "the leaf's host as external", lambda d: [r for r in rows(d, "#endpoints tbody tr")
                                                                  if r[0] == FAR_MAC["blue"]])
    assert got[0][1:3] == (FAR_IP, want), got
    ours = [r for r in rows(browser, "#endpoints tbody tr") if r[0] == w.ov.vms[("blue", 1)].mac]
    assert ours and "external" not in ours[0][2], ours
    print(f"web view, blue's endpoints: {rows(browser, '#endpoints tbody tr')}")


def test_an_ovs_vms_arp_for_a_leaf_host_is_answered_in_the_switch(w: World):
    b1 = w.ov.vms[("blue", 1)]
    b1.exec(["ip", "neigh", "flush", "dev", "eth0"])
    replies: list[str] = []
    leaf_in = w.lab._new_capture(w.leaf.ns, "eth0", "in", "udp port 4789",
                                 (None, w.leaf.ul_veth, "02:ff:00:00:00:01")).start()

    def arp() -> None:
        out = b1.exec(["arping", "-i", "eth0", "-c", "20", "-W", "0.01", "-w", "3", FAR_IP], check=False).stdout
        replies.extend(line for line in out.splitlines() if "bytes from" in line)
    try:
        frames = frames_of(w.ov.hosts, arp)
    finally:
        to_leaf = leaf_in.stop()
    assert len(replies) == 20 and all(FAR_MAC["blue"] in r for r in replies), replies
    assert frames == 0 and to_leaf == [], (frames, to_leaf)
    print(f"20 ARP requests from b1 for {FAR_IP}: 20 answers with {FAR_MAC['blue']}, underlay frames to the "
          f"OVS hosts: {frames}, VXLAN frames to the leaf: {len(to_leaf)}")


def test_the_leaf_lists_our_endpoints_behind_their_hosts(w: World):
    announce(list(w.ov.vms.values()))
    want = {(vm.mac, vm.ip, vm.host.underlay_ip, TENANTS[t][0]) for (t, _), vm in w.ov.vms.items()}

    def listed() -> set:
        return {(r["mac"], r["ip"], r["vtep"], int(r["rd"].split(":")[1])) for r in w.routes(type=2)
                if r["ip"] and r["vtep"] != w.leaf.underlay_ip}
    wait_for(lambda: want <= listed(), 10, 0.2, f"our endpoints on the leaf: {listed()} vs {want}")
    text = w.leaf.vtysh("show bgp l2vpn evpn route")
    for vm in w.ov.vms.values():
        assert vm.mac in text and vm.host.underlay_ip in text, text
    floods = {(r["vtep"], r["rd"]) for r in w.routes(type=3)}
    assert {(h.underlay_ip, f"{ASN}:{vni}") for h in w.ov.hosts for vni, _ in TENANTS.values()} <= floods, floods
    # zebra installed them: remote MACs in the VNI's table, our hosts in its flood list
    macs = w.leaf.macs(TENANTS["blue"][0])
    assert macs[w.ov.vms[("blue", 1)].mac]["remoteVtep"] == w.ov.hosts[0].underlay_ip, macs
    flood_list = w.leaf.remote_vteps(TENANTS["blue"][0])
    assert {h.underlay_ip for h in w.ov.hosts} <= flood_list, (w.leaf.fdb(TENANTS["blue"][0]),
                                                                 w.leaf.vtysh(f"show evpn vni {TENANTS['blue'][0]}"))
    b1 = w.ov.vms[("blue", 1)]
    print(f"the leaf holds {len(want)} MAC/IP routes of ours and {len(floods)} type-3 routes (its own included); "
          f"b1's: {[(r['prefix'], r['vtep'], r['ext']) for r in w.routes(type=2, mac=b1.mac)]}")


def test_a_vm_that_moves_is_readvertised_with_a_higher_sequence_number_and_the_leaf_follows(w: World):
    blue = TENANTS["blue"]
    b1 = w.ov.vms[("blue", 1)]
    h1, h2 = w.ov.hosts
    mac = b1.mac
    before = max((r["seq"] for r in w.routes(type=2, mac=mac)), default=0)
    w.lab.add_vm(h1, "b1stay", blue[1], "192.168.1.11/24")  # h1 keeps a blue member
    w.lab.remove_vm(b1)
    moved = w.lab.add_vm(h2, "b1moved", blue[1], b1.cidr, mac=mac)
    w.ov.vms[("blue", 1)] = moved
    started = time.monotonic()
    garp = subprocess.Popen(["ip", "netns", "exec", moved.ns, "arping", "-U", "-i", "eth0", "-c", "1", "-w", "1",
                             moved.ip], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: w.leaf.macs(blue[0]).get(mac, {}).get("remoteVtep") == h2.underlay_ip, 10, 0.05,
                 f"the leaf's zebra moves {mac} to h2\n{w.leaf.macs(blue[0])}")
        took = time.monotonic() - started
    finally:
        garp.wait(10)
    seqs = {r["seq"] for r in w.routes(type=2, mac=mac) if not r["local"]}
    vteps = {r["vtep"] for r in w.routes(type=2, mac=mac)}
    assert seqs and min(seqs) > before and vteps == {h2.underlay_ip}, (before, seqs, vteps)
    assert wait_for(lambda: w.far["blue"].ping(moved.ip, timeout=1), 5, 0.1, "leaf host -> moved VM")
    print(f"b1 moved h1 -> h2: MAC Mobility sequence {before} -> {sorted(seqs)}, the leaf's zebra followed in "
          f"{took:.2f} s")


def test_losing_the_session_withdraws_the_imported_endpoints_after_the_hold_time_and_they_return(w: World):
    far = FAR_MAC["blue"]
    h1 = w.ov.hosts[0]
    assert far in w.endpoints("blue") and far in h1.ofctl("dump-flows", "br1", "table=20")
    w.leaf.cut_session()
    started = time.monotonic()
    try:
        wait_for(lambda: far not in w.endpoints("blue"), HOLD + 10, 0.1, "imported endpoints withdrawn")
        gone = time.monotonic() - started
        wait_for(lambda: far not in h1.ofctl("dump-flows", "br1", "table=20"), 2, 0.05, "its flows removed")
    finally:
        w.leaf.restore_session()
    # the hold timer restarts with every keepalive (one a second): it runs out 2-3 s after the cut
    assert gone >= HOLD / 2, f"withdrawn after {gone:.1f} s: before the hold time ran out?"
    back = time.monotonic()
    wait_for(lambda: w.endpoints("blue").get(far, {}).get("external"), 30, 0.1,
             f"imported again\n{w.ctl.log_tail()}")
    returned = time.monotonic() - back
    assert wait_for(lambda: w.ov.vms[("blue", 2)].ping(FAR_IP, timeout=1), 10, 0.1, "b2 -> leaf host again")
    print(f"session cut: imported endpoints withdrawn after {gone:.1f} s (hold time {HOLD} s); "
          f"session restored: back after {returned:.1f} s")


def test_an_aged_out_endpoint_and_a_deleted_tenant_are_withdrawn_on_the_leaf(w: World):
    b2 = w.ov.vms[("blue", 2)]
    announce([b2])
    wait_for(lambda: w.routes(type=2, mac=b2.mac), 10, 0.1, "b2 advertised")
    w.lab.remove_vm(b2)  # silent from now on: its source entry idles out
    started = time.monotonic()
    wait_for(lambda: not w.routes(type=2, mac=b2.mac), IDLE + 10, 0.2, "b2 withdrawn on the leaf")
    print(f"b2 went silent: withdrawn on the leaf {time.monotonic() - started:.1f} s later (idle timeout {IDLE} s)")
    red = TENANTS["red"][0]
    assert w.routes(rd=f"{ASN}:{red}")
    w.ctl.api.delete("/v1/tenants/red")
    started = time.monotonic()
    wait_for(lambda: not w.routes(rd=f"{ASN}:{red}"), 10, 0.1, "red's routes withdrawn on the leaf")
    print(f"tenant red deleted: its routes withdrawn on the leaf in {time.monotonic() - started:.2f} s")


def test_a_tenant_created_while_the_session_is_up_imports_the_leafs_hosts_at_once(w: World):
    """#22.12: the leaf sent its routes while their tenant did not exist here (red, deleted by the
    test before; green, a VNI the controller never had). Created now, the session up all along:
    the leaf's hosts of both are imported within seconds, without the leaf sending anything again."""
    green_vni, green_mac = 5003, "02:00:00:00:05:03"
    aside = w.ctl.api.get("/v1/counters").get("evpn_paths_set_aside", 0)
    w.leaf.add_vni(green_vni)
    gfar = w.leaf.add_host("gfar", green_vni, f"{FAR_IP}/24", green_mac)
    w.leaf.neighbour(gfar, green_vni)
    gfar.exec(["arping", "-U", "-c", "1", "-w", "1", "-I", "eth0", gfar.ip], check=False)
    wait_for(lambda: w.routes(type=2, mac=green_mac, ip=FAR_IP), 10, 0.1, "the leaf advertises green's host")
    wait_for(lambda: w.routes(type=2, mac=FAR_MAC["red"], ip=FAR_IP), 10, 0.1, "the leaf still advertises red's")
    sessions = w.leaf.vtysh_json(f"show bgp neighbors {w.lab.controller_ip}")[w.lab.controller_ip]
    established = sessions["connectionsEstablished"]
    # green's MAC, MAC/IP and type-3 routes reached the controller, which has no tenant for them
    wait_for(lambda: w.ctl.api.get("/v1/counters").get("evpn_paths_set_aside", 0) >= aside + 2, 10, 0.05,
             "the leaf's routes for VNI 5003 set aside")
    assert "green" not in [t["name"] for t in w.ctl.api.get("/v1/tenants")]
    took = {}
    for name, vni, vlan, far_mac in (("red", TENANTS["red"][0], TENANTS["red"][1], FAR_MAC["red"]),
                                     ("green", green_vni, 30, green_mac)):
        w.ctl.api.post("/v1/tenants", {"name": name, "vni": vni, "vlan": vlan})
        started = time.monotonic()
        wait_for(lambda n=name, m=far_mac: w.endpoints(n).get(m, {}).get("external"), 5, 0.05,
                 f"{name}'s host behind the leaf imported\n{w.ctl.log_tail()}")
        took[name] = time.monotonic() - started
        assert w.endpoints(name)[far_mac]["ips"] == [FAR_IP]
    after = w.leaf.vtysh_json(f"show bgp neighbors {w.lab.controller_ip}")[w.lab.controller_ip]
    assert after["bgpState"] == "Established" and after["connectionsEstablished"] == established, after
    counters = w.ctl.api.get("/v1/counters")
    print(f"tenants created with the session up: the leaf's hosts imported {took['red']:.2f} s (red, re-created) "
          f"and {took['green']:.2f} s (green, new VNI) after the POST; session not reset "
          f"(established {established} times); evpn_own_routes_looped={counters.get('evpn_own_routes_looped', 0)}")

"""Trust on the real lab (issue 21, the identity half; docs/operator/security.md): a host nobody
admitted gets no tunnel, no flow and no broadcast copy until an operator admits it; a connection
claiming a connected host's system-id and datapath ID is refused while the host loses no echo; a
gratuitous ARP from a host not admitted or from another tenant moves nothing; port security drops
a spoofed source. One lab for the file (the controller with its default admission, approve); each
test leaves it as it found it.
"""

from __future__ import annotations

import re
import shutil
import sys
import time

import pytest

from controller.cli.client import ApiError
from lab.controller import Controller
from lab.netlab import Host, Lab, Vm, wait_for
from lab.overlay import Overlay, PingStream, announce, arp_burst, create_tenants, flow_table, wait_meshed

RED_VLAN, BLUE_VLAN = 20, 10


@pytest.fixture(scope="module")
def ov(request):
    lab = Lab()
    ctl = Controller(lab.controller_ip)  # admission: the default (approve); the lab admits h1-h3 over REST
    failed = request.session.testsfailed
    try:
        ctl.start()
        create_tenants(ctl)
        overlay = Overlay(lab, ctl)
        for _ in range(3):
            overlay.add_host()
        overlay.wait_meshed(settle=True)
        yield overlay
    finally:
        if request.session.testsfailed > failed:
            print(f"--- controller log ({ctl.log_path})\n{ctl.log_tail(120)}")
        ctl.stop()
        lab.close()
        shutil.rmtree(ctl.workdir, ignore_errors=True)


# ---- helpers ---------------------------------------------------------------------------------

def host_doc(ctl: Controller, host: str) -> dict | None:
    try:
        return ctl.api.get(f"/v1/hosts/{host}")
    except ApiError:
        return None


def wait_waiting(ctl: Controller, host: str) -> dict:
    """Until the controller lists host as connected on both channels and not admitted."""
    def listed() -> dict | None:
        doc = host_doc(ctl, host)
        return doc if doc and doc["connected"] == {"ovsdb": True, "openflow": True} and not doc["admitted"] else None
    return wait_for(listed, 20, 0.1, f"{host} listed, connected, not admitted\n{ctl.log_tail()}")


def rogue_host(ov: Overlay, name: str, vm_ip: str, **claims: str) -> tuple[Host, Vm]:
    """A namespace with its own Open vSwitch that reaches the controller, nobody's host, with a red VM."""
    ctl = ov.ctl
    host = ov.lab.add_host(name, of_port=ctl.of_port, ovsdb_port=ctl.ovsdb_port, **claims)
    vm = ov.lab.add_vm(host, f"{name}r", RED_VLAN, f"{vm_ip}/24", mac=f"02:00:00:00:66:{host.index:02x}")
    return host, vm


def remove(ov: Overlay, host: Host, system_id: str | None = None) -> None:
    ov.lab.remove_host(host)
    if system_id is not None:  # its OVSDB connection closed: no longer listed
        wait_for(lambda: host_doc(ov.ctl, system_id) is None, 15, 0.1, f"{system_id} no longer listed")


def our_flows(host: Host) -> list[str]:
    return [ln for ln in host.ofctl("dump-flows", "br1").splitlines() if "cookie=" in ln]


def tunnels_toward(ov: Overlay, ip: str) -> list[str]:
    return [h.name for h in ov.hosts if any(p["remote_ip"] == ip for p in h.tunnel_ports().values())]


def udp_broadcast(vm: Vm, port: int, count: int = 3) -> None:
    vm.exec([sys.executable, "-c", "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
             "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); "
             f"[s.sendto(b'x', ('192.168.1.255', {port})) for _ in range({count})]"])


def metric(ctl: Controller, sample: str) -> float:
    """One sample of /metrics, e.g. 'overlay_identity_refused_total{channel="ovsdb",reason="in_use"}'."""
    for line in ctl.metrics_text().splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def bound_to(ctl: Controller, tenant: str, ip: str) -> str | None:
    """The MAC the controller binds ip to in tenant."""
    return next((ep["mac"] for ep in ctl.api.get(f"/v1/tenants/{tenant}/endpoints") if ip in ep["ips"]), None)


# ---- the tests ---------------------------------------------------------------------------------

def test_a_rogue_host_gets_nothing_until_admitted_and_nothing_once_revoked(ov):
    ctl, red1, red2 = ov.ctl, ov.vms[("red", 1)], ov.vms[("red", 2)]
    rogue, rvm = rogue_host(ov, "rogue", "192.168.1.44")
    try:
        doc = wait_waiting(ctl, "rogue")
        assert doc["tunnels"] == [] and "overlayctl hosts admit rogue" in doc["admission"]
        with rvm.capture() as cap:
            red1.arping("192.168.1.98", timeout=0.3)  # red's ARP for a missing IP, flooded to red's hosts
            udp_broadcast(red1, 9998)  # and red's broadcasts
            assert our_flows(rogue) == [] and tunnels_toward(ov, rogue.underlay_ip) == []
            assert rogue.tunnel_ports() == {} and "group_id" not in rogue.ofctl("dump-groups", "br1")
            ctl.admit("rogue")  # the positive control, in the same capture: admitted, it gets them
            wait_meshed(ctl, [*ov.hosts, rogue])
            ov.lab.settle_underlay()
            red1.arping("192.168.1.97", timeout=0.3)
            udp_broadcast(red1, 9999)
            wait_for(lambda: sum(".9999:" in ln for ln in cap.lines()) == 3, 10, 0.05, "the broadcasts, admitted")
        frames = cap.frames
        assert not [f for f in frames if "192.168.1.98" in f or ".9998:" in f], frames  # nothing before
        assert [f for f in frames if "who-has 192.168.1.97" in f]
        assert sorted(tunnels_toward(ov, rogue.underlay_ip)) == ["h1", "h2", "h3"] and our_flows(rogue)

        ctl.api.put("/v1/hosts/rogue/admission", {"admitted": False})  # revoked: out again
        wait_for(lambda: not our_flows(rogue) and not tunnels_toward(ov, rogue.underlay_ip)
                 and not rogue.tunnel_ports(), 15, 0.1, "rogue wiped and no tunnel toward it")
        assert "revoked" in host_doc(ctl, "rogue")["admission"]
        with rvm.capture() as out, red2.capture() as control:
            udp_broadcast(red1, 9997)
            wait_for(lambda: sum(".9997:" in ln for ln in control.lines()) == 3, 10, 0.05, "the control's copies")
        assert not [f for f in out.frames if ".9997:" in f]
        assert metric(ctl, "overlay_hosts_waiting") == 1
    finally:
        remove(ov, rogue, "rogue")


def test_impersonating_a_connected_host_loses_no_echo_and_the_host_stays_joined(ov):
    ctl, h2 = ov.ctl, ov.hosts[1]
    red1, red2 = ov.vms[("red", 1)], ov.vms[("red", 2)]
    before = {ch: metric(ctl, f'overlay_identity_refused_total{{channel="{ch}",reason="in_use"}}')
              for ch in ("ovsdb", "openflow")}
    with PingStream(red1, red2.ip) as stream:  # an echo every 20 ms
        imp, imp_vm = rogue_host(ov, "imp", red2.ip, system_id="h2", datapath_id=h2.datapath_id)
        try:
            def refused(channel: str) -> int:
                return sum(c["count"] for c in host_doc(ctl, "h2")["refused_claims"]
                           if (c["channel"], c["reason"]) == (channel, "in_use"))
            # it tries again and again (max_backoff 1 s): each attempt refused while the stream runs
            wait_for(lambda: refused("ovsdb") >= 3 and refused("openflow") >= 3, 20, 0.1,
                     f"three refusals on each channel\n{ctl.log_tail()}")
            imp_vm.gratuitous_arp(red2.ip)  # its VM's claims reach nobody: its switch is no host's
            assert stream.running()
        finally:
            remove(ov, imp)
    assert stream.lost == [] and stream.replies > 100, (stream.lost[:20], stream.replies)
    doc = host_doc(ctl, "h2")
    assert doc["connected"] == {"ovsdb": True, "openflow": True} and doc["joined"] and doc["admitted"]
    assert doc["peer"].startswith(f"{h2.mgmt_ip}:") and doc["datapath_id"] == h2.datapath_id
    for ch in ("ovsdb", "openflow"):
        assert metric(ctl, f'overlay_identity_refused_total{{channel="{ch}",reason="in_use"}}') >= before[ch] + 3
        logged = re.findall(rf"refused {ch} connection from [0-9.]+:\d+ claiming h2:", ctl.log_path.read_text())
        assert len(logged) == 1, logged  # logged once, counted every time
    assert "Traceback" not in ctl.log_path.read_text()


def test_a_host_whose_channels_come_back_is_restored_without_a_hand(ov):
    ctl, h2 = ov.ctl, ov.hosts[1]
    red1, red2 = ov.vms[("red", 1)], ov.vms[("red", 2)]
    h2.vsctl("del-manager")  # its OVSDB channel goes...
    wait_for(lambda: not host_doc(ctl, "h2")["connected"]["ovsdb"], 15, 0.1, "h2's OVSDB down")
    h2.set_manager(ctl.listen_ip, ctl.ovsdb_port)  # ...and comes back (from its own address)
    restarted = time.monotonic()
    h2.restart_vswitchd()  # its br1 too: every flow gone, the daemon back empty
    wait_for(lambda: our_flows(h2) and host_doc(ctl, "h2")["connected"] == {"ovsdb": True, "openflow": True},
             20, 0.1, f"h2 connected and programmed again\n{ctl.log_tail()}")
    ages = [duration for duration, _ in flow_table(h2).values()]
    assert ages and max(ages) < time.monotonic() - restarted  # every flow put there since the restart
    wait_meshed(ctl, ov.hosts)
    wait_for(lambda: red1.ping(red2.ip, timeout=0.5), 15, 0.1, "red1 reaches red2 again")
    assert host_doc(ctl, "h2")["refused_claims"] == [] or all(  # its own return is never refused
        c["peer"].split(":")[0] != h2.mgmt_ip for c in host_doc(ctl, "h2")["refused_claims"])


def test_a_gratuitous_arp_from_a_host_not_admitted_or_another_tenant_moves_nothing(ov):
    ctl = ov.ctl
    red1, red2, blue2, blue3 = (ov.vms[k] for k in (("red", 1), ("red", 2), ("blue", 2), ("blue", 3)))
    announce([red2, blue2])
    wait_for(lambda: bound_to(ctl, "red", red2.ip) == red2.mac and bound_to(ctl, "blue", blue2.ip) == blue2.mac,
             10, 0.1, "red's and blue's .2 known")
    rogue, rvm = rogue_host(ov, "rogue2", "192.168.1.45")
    try:
        wait_waiting(ctl, "rogue2")
        for _ in range(3):
            rvm.gratuitous_arp(red2.ip)  # the hijack of the issue, from a host nobody admitted
            blue3.gratuitous_arp(red2.ip)  # blue's VM takes blue's .2 (a VIP failover): red's stays
        # the positive control: blue's claim, on an admitted host in its own tenant, is followed
        wait_for(lambda: bound_to(ctl, "blue", blue2.ip) == blue3.mac, 10, 0.1, "blue's .2 moved to blue3")
        assert bound_to(ctl, "red", red2.ip) == red2.mac
        assert not [ep for ep in ctl.api.get("/v1/tenants/red/endpoints") if ep["mac"] == rvm.mac]
        answers = arp_burst(red1, red2.ip, 5)  # answered in the switch, from the controller's binding
        assert answers and set(answers) == {red2.mac}, answers
        assert red1.ping(red2.ip, count=5, timeout=0.5)
    finally:
        announce([blue2])  # blue's .2 back where it lives
        remove(ov, rogue, "rogue2")


def test_port_security_drops_a_spoofed_source(ov):
    ctl, h3 = ov.ctl, ov.hosts[2]
    red1, red3 = ov.vms[("red", 1)], ov.vms[("red", 3)]
    rule = f"/v1/hosts/h3/ports/{red3.port}"
    ctl.api.put(rule, {"macs": [red3.mac], "ips": [red3.ip]})
    try:
        wait_for(lambda: "cookie=" in h3.ofctl("dump-flows", "br1", "table=2"), 10, 0.1, "h3's port security flows")
        dropped = metric(ctl, "overlay_port_security_dropped_total")
        assert red3.ping(red1.ip, count=3)  # its own MAC and IP: through
        spoof_mac = "02:00:00:00:99:99"
        with red1.capture() as cap:
            _send(red3, spoof_mac, red3.ip)  # a source MAC the port may not use
            _send(red3, red3.mac, red1.ip)  # its MAC claiming red1's IP
            _send(red3, red3.mac, red3.ip)  # the control: its own claim, through
            wait_for(lambda: any(f"who-has {red3.ip} tell {red3.ip}" in ln for ln in cap.lines()), 10, 0.05,
                     "the control frame")
        assert not [f for f in cap.frames if spoof_mac in f or f"tell {red1.ip}" in f], cap.frames
        assert bound_to(ctl, "red", red1.ip) in (red1.mac, None)
        assert not [ep for ep in ctl.api.get("/v1/tenants/red/endpoints") if ep["mac"] == spoof_mac]
        wait_for(lambda: metric(ctl, "overlay_port_security_dropped_total") >= dropped + 2, 15, 0.2,
                 "the drops counted (switch counters polled)")
    finally:
        ctl.api.delete(rule)
    wait_for(lambda: "cookie=" not in h3.ofctl("dump-flows", "br1", "table=2"), 10, 0.1, "the guard removed")


def _send(vm: Vm, mac: str, ip: str) -> None:
    """A gratuitous ARP for ip from mac, out of the VM's eth0 (whatever its own addresses are)."""
    from lab.capture import _garp_frame, _send_frames

    _send_frames(vm.ns, "eth0", [_garp_frame(mac, ip)])

"""Tests of the lab harness itself (need root and Open vSwitch, no controller).

The controller's part (tunnels, flows) is played by hand here, with the
article's seed pipeline, so that the harness is proven independently of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from controller.pipeline import tunnel_kinds as tunnels
from lab import Capture, Host, Lab, Vm, cleanup_stale, free_tcp_ports, tcp_port_free, wait_for
from lab.netlab import RUN_ROOT
from tests.lab.seed_flows import hand_mesh, install_seed_flows

REPO = Path(__file__).resolve().parents[2]


def _add_hosts(lab: Lab, names: list[str]) -> list[Host]:
    # ports nobody listens on: these tests must not meet a real controller
    of_port, ovsdb_port = free_tcp_ports(2)
    return [lab.add_host(n, of_port=of_port, ovsdb_port=ovsdb_port) for n in names]


def _knows_all(hosts: list[Host]) -> bool:
    return all(
        {p.underlay_ip for p in hosts if p is not h} <= set(h.neighbours())
        for h in hosts
    )


def _leftovers(prefix: str) -> list[str]:
    """Everything on the machine that carries the lab's prefix."""
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    found = [f"netns {n}" for n in netns if n.startswith(prefix + "-")]
    link = re.compile(rf"^{prefix}(mg|ul|[muv]\d+)$")
    found += [f"link {n}" for n in os.listdir("/sys/class/net") if link.match(n)]
    if (RUN_ROOT / prefix).exists():
        found.append(f"rundir {RUN_ROOT / prefix}")
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _tcp_transfer(src: Vm, dst: Vm, nbytes: int = 300_000) -> int:
    """Send nbytes over TCP from src to dst; return what dst received."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", dst.ns, sys.executable, "-c",
         "import socket\n"
         "s = socket.socket(); s.bind(('0.0.0.0', 5001)); s.listen()\n"
         "c, _ = s.accept(); c.settimeout(10); n = 0\n"
         "while d := c.recv(65536): n += len(d)\n"
         "print(n)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        client = (
            "import socket, sys\n"
            f"s = socket.create_connection(('{dst.ip}', 5001), timeout=5)\n"
            f"s.sendall(b'x' * {nbytes}); s.close()\n"
        )
        # the server may not listen yet: retry the connect until it does
        wait_for(lambda: src.exec([sys.executable, "-c", client], check=False).returncode == 0,
                 10, 0.05, "TCP client never connected")
        out, _ = server.communicate(timeout=15)
        return int(out.strip())
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.parametrize("tunnel_type", tunnels.NAMES)
def test_seed_pipeline_same_tenant_pings_other_tenant_sees_nothing(tunnel_type: str) -> None:
    with Lab() as lab:
        hosts = _add_hosts(lab, ["h1", "h2", "h3"])
        hand_mesh(lab, hosts, tunnel_type)
        for h in hosts:
            flows = install_seed_flows(h)
            assert len(h.ofctl("dump-flows", "br1").splitlines()) == len(flows) + 1
            assert sorted(t["ofport"] for t in h.tunnel_ports().values()) == [2, 3]
        # h1 and h2 joined before any host had a tunnel port, when nobody
        # snooped their announcements: announcing again now fills every cache
        assert not _knows_all(hosts)
        lab.settle_underlay()
        assert _knows_all(hosts)

        # tenant A on VLAN 1 and tenant B on VLAN 2 use the very same IPs
        tenants: dict[int, list[Vm]] = {1: [], 2: []}
        for h in hosts:
            for vlan in (1, 2):
                tenants[vlan].append(
                    lab.add_vm(h, f"{h.name}t{vlan}", vlan, f"192.168.1.{h.index}/24"))

        for vlan, other in ((1, 2), (2, 1)):
            with contextlib.ExitStack() as stack:
                caps: list[Capture] = [stack.enter_context(v.capture()) for v in tenants[other]]
                witness = stack.enter_context(tenants[vlan][2].capture())
                for a in tenants[vlan]:
                    for b in tenants[vlan]:
                        if a.host is not b.host:
                            # count=1: the very first packet must get through
                            assert a.ping(b.ip), f"{a.name} -> {b.name} over {tunnel_type}"
                for cap in caps:
                    cap.stop()
                witness.stop()
            assert any("ICMP echo request" in f for f in witness.frames)
            for v, cap in zip(tenants[other], caps, strict=True):
                assert cap.frames == [], f"tenant {vlan} frames reached {v.name}: {cap.frames}"

        # TCP across hosts: needs the VM-side tx checksum offload off and an
        # MTU that fits the tunnel overhead
        assert _tcp_transfer(tenants[1][0], tenants[1][2]) == 300_000

        # the hosts' tunnel rx counters saw the overlay traffic
        stats = hosts[0].port_stats()
        assert stats["patch-int"]["rx_packets"] > 0
        assert sum(s["rx_packets"] for n, s in stats.items() if n.startswith(tunnel_type)) > 0


def test_late_host_reachable_with_nothing_run_on_existing_hosts() -> None:
    with Lab() as lab:
        old = _add_hosts(lab, ["h1", "h2", "h3"])
        hand_mesh(lab, old, "vxlan")
        for h in old:
            install_seed_flows(h)
        lab.settle_underlay()
        old_vms = [lab.add_vm(h, f"{h.name}v", 1, f"192.168.1.{h.index}/24") for h in old]

        (new,) = _add_hosts(lab, ["h4"])
        # From here on nothing touches neighbours on h1..h3. The existing
        # hosts snooped h4's gratuitous ARP (they have tunnel ports);
        # h4 set static entries for the peers it joined.
        assert _knows_all([*old, new])
        with new.capture("eth0", direction=None, bpf="arp") as underlay_arp:
            # the controller's part, played by hand: tunnels and flood flows
            hand_mesh(lab, [*old, new], "vxlan")
            for h in [*old, new]:
                install_seed_flows(h)
            new_vm = lab.add_vm(new, "h4v", 1, "192.168.1.4/24")
            for v in old_vms:
                assert v.ping(new_vm.ip), f"{v.name} -> {new_vm.name}"
                assert new_vm.ping(v.ip), f"{new_vm.name} -> {v.name}"
        # no host had to resolve an underlay address: no first packet lost
        assert underlay_arp.frames == []

        # control: without the announcement the existing hosts learn nothing
        silent = lab.add_host("h5", of_port=new.of_port, ovsdb_port=new.ovsdb_port,
                              announce=False)
        assert all(silent.underlay_ip not in h.neighbours() for h in old)


def _assert_gone(prefix: str, pids: list[int]) -> None:
    assert _leftovers(prefix) == []
    assert [p for p in pids if _alive(p)] == []


def _lab_pids(lab: Lab) -> list[int]:
    pids = []
    for h in lab.hosts.values():
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pids.append(int((Path(h.rundir) / f"{name}.pid").read_text()))
    return pids


def test_close_removes_everything_also_after_an_exception() -> None:
    pids: list[int] = []
    prefix = ""
    with pytest.raises(RuntimeError, match="test body failed"):
        with Lab() as lab:
            prefix = lab.prefix
            h1, h2 = _add_hosts(lab, ["h1", "h2"])
            lab.add_hand_tunnel(h1, h2, "gre")
            vm = lab.add_vm(h1, "v1", 1, "192.168.1.1/24")
            lab.add_vm(h2, "v2", 2, "192.168.1.2/24", ipv6="fd00::2/64")
            cap = vm.capture().start()  # left running on purpose
            pids = _lab_pids(lab) + [cap.pid or 0]
            assert _leftovers(prefix)
            raise RuntimeError("test body failed")
    _assert_gone(prefix, pids)
    lab.close()  # idempotent


def test_remove_vm_and_host_then_close() -> None:
    lab = Lab()
    try:
        h1, h2 = _add_hosts(lab, ["h1", "h2"])
        vm = lab.add_vm(h1, "v1", 1, "192.168.1.1/24")
        lab.remove_vm(vm)
        assert "v1" not in lab.vms and vm.port not in h1.vsctl("list-ports", "br0")
        # the name is free again at once (the veth is gone)
        lab.add_vm(h1, "v1", 1, "192.168.1.1/24")
        pids = _lab_pids(lab)
        lab.remove_host(h2)
        assert "h2" not in lab.hosts and not Path(f"/run/netns/{h2.ns}").exists()
        assert not any(_alive(p) for p in pids[2:])
    finally:
        lab.close()
    _assert_gone(lab.prefix, pids)


def test_cleanup_stale_removes_a_killed_run() -> None:
    tag = f"k{os.getpid() % 1000}"
    script = (
        "import sys, time\n"
        "from lab import Lab, free_tcp_ports\n"
        f"lab = Lab(tag={tag!r})\n"
        "p, q = free_tcp_ports(2)\n"
        "h = lab.add_host('h1', of_port=p, ovsdb_port=q)\n"
        "vm = lab.add_vm(h, 'v1', 1, '192.168.1.1/24')\n"
        "vm.capture().start()\n"
        "print(lab.prefix, flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        prefix = child.stdout.readline().strip()
        assert prefix and _leftovers(prefix)
        pids = [int(p.read_text()) for p in (RUN_ROOT / prefix).glob("h*/*.pid")]
        assert len(pids) == 2
        # a live owner protects its lab
        assert prefix not in cleanup_stale()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert cleanup_stale(tag) == [prefix]
    _assert_gone(prefix, pids)


def test_hosts_reach_a_controller_on_controller_ip() -> None:
    with Lab() as lab:
        of_port, ovsdb_port = free_tcp_ports(2)
        # OVSDB side: accepting the TCP connection is all the manager needs
        ovsdb = socket.create_server((lab.controller_ip, ovsdb_port))
        osken = subprocess.Popen(
            [str(Path(sys.executable).with_name("osken-manager")),
             "--ofp-listen-host", lab.controller_ip,
             "--ofp-tcp-listen-port", str(of_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: not tcp_port_free(of_port, lab.controller_ip), 10,
                     message="osken-manager did not listen")
            hosts = [lab.add_host(n, of_port=of_port, ovsdb_port=ovsdb_port)
                     for n in ("h1", "h2")]
            lab.wait_connected(timeout=5)
            # and OVS itself agrees (its status columns lag a few seconds)
            wait_for(lambda: all(r["is_connected"] is True for h in hosts for r in
                                 h.vsctl_json("--columns=is_connected", "list", "Controller")),
                     15, 0.2, "OVS never reported the controller connection")
            assert len({h.datapath_id for h in hosts}) == 2
            assert hosts[0].vsctl("get", "Bridge", "br1", "other_config:datapath-id") \
                .strip().strip('"') == hosts[0].datapath_id
        finally:
            osken.terminate()
            osken.wait(10)
            ovsdb.close()

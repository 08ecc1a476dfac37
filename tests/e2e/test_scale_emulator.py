"""The scale benchmark's emulated hosts hold exactly what real Open vSwitch holds, for the same events.

The 3-host lab (real ovs-vswitchd per host) and three emulated hosts (bench/emuhost.py) with
the same system-ids, overlay IPs and VM ports each join their own controller; tenants are
created and every VM announces itself. Then each host's br1 is dumped: `ovs-ofctl
dump-flows/dump-groups` on the real one, and on the emulated one `ovs-ofctl ofp-print` of
the very flow/group stats replies it would send the controller. Normalised (counters and
ages dropped, port numbers replaced by port names and cookies' content digests dropped: each OVS numbers
ports its own way; lines sorted) they must be equal.
"""

from __future__ import annotations

import asyncio
import difflib
import re
import shutil
import subprocess
import time

from bench.emuhost import EmuHost
from controller.model import flows as f
from lab.controller import Controller
from lab.overlay import announce, create_tenants

VOLATILE = re.compile(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, ")
PORT = re.compile(r"(in_port=|output:)(\d+)")
COOKIE = re.compile(r"cookie=(0x[0-9a-f]+)")


def _cookie(value: str, ports: dict[int, str]) -> str:
    """A cookie's low bits digest the flow's content, port numbers included, which each OVS numbers
    its own way: compare owner, VNI and role (the content itself is compared with ports named)."""
    cookie = int(value, 16) & ~f.DIGEST_MASK
    return f"cookie={cookie:#x}"


def normalise(text: str, ports: dict[int, str]) -> list[str]:
    """ovs-ofctl's flow or group lines, comparable across switches."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith(("cookie=", "group_id=")):
            continue  # reply headers
        line = VOLATILE.sub("", line)
        line = PORT.sub(lambda m: m.group(1) + ports.get(int(m.group(2)), m.group(2)), line)
        line = COOKIE.sub(lambda m: _cookie(m.group(1), ports), line)
        out.append(line)
    return sorted(out)


def ofp_print(messages: list[bytes]) -> str:
    return "\n".join(subprocess.run(["ovs-ofctl", "ofp-print", m.hex()], capture_output=True, text=True,
                                    check=True, timeout=10).stdout for m in messages)


def real_tables(host) -> list[str]:
    ports = {p["ofport"]: name for name, p in host.tunnel_ports().items()} | {1: "patch-int"}
    return (normalise(host.ofctl("dump-flows", "br1"), ports)
            + normalise(host.ofctl("dump-groups", "br1"), ports))


def emulated_tables(emu: EmuHost) -> list[str]:
    sw = emu.switch
    return (normalise(ofp_print(sw.flow_stats_reply()), sw.ports)
            + normalise(ofp_print(sw.group_desc_reply()), sw.ports))


def test_emulated_tables_equal_real_ovs(make_overlay):
    ov = make_overlay()  # 3 real hosts, tenants blue and red, a VM of each on each host
    vms = list(ov.vms.values())
    announce(vms)
    ctl = Controller("127.0.0.1").start()
    try:
        create_tenants(ctl)
        ctl.admit(*(h.name for h in ov.hosts))  # the emulated hosts take the real ones' names
        asyncio.run(_compare(ov, ctl))
    finally:
        ctl.stop()
        shutil.rmtree(ctl.workdir, ignore_errors=True)


async def _compare(ov, ctl: Controller) -> None:
    emus = []
    for host in ov.hosts:
        emu = EmuHost(host.name, host.underlay_ip, int(host.datapath_id, 16))
        for vm in host.vms.values():
            emu.add_vm(vm.vlan, vm.mac)
        emus.append(emu)
    try:
        await asyncio.gather(*(e.connect(ctl.of_port, ctl.ovsdb_port) for e in emus))
        deadline = time.monotonic() + 10
        while not all(("base",) in e.switch.marks and len(e.switch.ports) == 3 for e in emus):
            assert time.monotonic() < deadline, f"emulated hosts not programmed:\n{ctl.log_tail()}"
            await asyncio.sleep(0.05)
        for emu, host in zip(emus, ov.hosts, strict=True):
            for vm in host.vms.values():
                assert emu.announce(vm.vlan, vm.mac, vm.ip) == 1  # from src-binding only: the responder is silent
        deadline = time.monotonic() + 15
        while True:
            real = [await asyncio.to_thread(real_tables, h) for h in ov.hosts]
            emulated = [emulated_tables(e) for e in emus]
            if real == emulated or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        for host, r, e in zip(ov.hosts, real, emulated, strict=True):
            unknown = [vm.mac for vm in ov.vms.values() if not any(vm.mac in line for line in r)]
            assert not unknown, f"{host.name}: the real br1 has no entries for {unknown}: {r}"
            diff = "\n".join(difflib.unified_diff(r, e, "real OVS", "emulated", lineterm=""))
            assert r == e, f"{host.name} differs:\n{diff}"
    finally:
        for e in emus:
            e.close()

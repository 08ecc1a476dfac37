"""One emulated hypervisor: its OVSDB (bench/emu_ovsdb.py) and its br1 (bench/emu_of.py), wired together.

Tunnel ports the controller creates over OVSDB get ofports and show up on br1 (port status,
port description); VMs are br0 ports tagged with their tenant's local VLAN, with
external_ids:attached-mac, and announce themselves with a gratuitous ARP that enters br1
from the patch port, as a frame from br0 would.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

from bench.emu_of import Switch
from bench.emu_ovsdb import Database, OvsdbPeer

PATCH_OFPORT = 1  # lab/: patch-int is br1's port 1


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def ip_int(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")


def garp(vlan: int, mac: str, ip: str) -> tuple[dict[str, int], bytes]:
    """A VM's gratuitous ARP (an ARP request for its own address) as br1 sees it: tagged, from the patch port."""
    m, a = mac_int(mac), ip_int(ip)
    data = (b"\xff" * 6 + m.to_bytes(6, "big") + struct.pack("!HHH", 0x8100, vlan, 0x0806)
            + struct.pack("!HHBBH6sI6sI", 1, 0x0800, 6, 4, 1, m.to_bytes(6, "big"), a, b"\0" * 6, a)).ljust(64, b"\0")
    packet = {"in_port": PATCH_OFPORT, "vlan_vid": 0x1000 | vlan, "eth_dst": 0xFFFFFFFFFFFF, "eth_src": m,
              "eth_type": 0x0806, "arp_op": 1, "arp_spa": a, "arp_tpa": a, "arp_sha": m, "arp_tha": 0}
    return packet, data


class EmuHost:
    def __init__(self, system_id: str, overlay_ip: str, dpid: int) -> None:
        self.id, self.ip, self.dpid = system_id, overlay_ip, dpid
        self.db = Database(system_id, overlay_ip, dpid)
        self.switch = Switch(dpid, PATCH_OFPORT)
        self.switch.ports[PATCH_OFPORT] = "patch-int"
        self.db.on_ofport = self._ofport
        self.ovsdb: OvsdbPeer | None = None
        self.transports: list[asyncio.BaseTransport] = []
        self.vm_count = 0

    def _ofport(self, bridge: str, ofport: int | None, name: str) -> None:
        if bridge != "br1":
            return
        if ofport is not None:
            self.switch.port_added(ofport, name)
        else:
            for n, port_name in list(self.switch.ports.items()):
                if port_name == name:
                    self.switch.port_deleted(n)

    def add_vm(self, vlan: int, mac: str) -> None:
        """A VM's port on br0 (before connecting: part of the initial rows; after: an update)."""
        self.vm_count += 1
        self.db.take()
        self.db.add_port("br0", f"vm{self.vm_count}", tag=vlan, attached_mac=mac)
        changes = self.db.take()
        if self.ovsdb is not None:
            self.ovsdb.notify(changes)

    async def connect(self, of_port: int, ovsdb_port: int, address: str = "127.0.0.1") -> None:
        """Dial the controller as a host built like lab/ does: br1's controller, then the manager."""
        loop = asyncio.get_running_loop()
        if self.switch.transport is None:  # a retry after a failed attempt dials only what is missing
            tr, _ = await loop.create_connection(lambda: self.switch, address, of_port)
            self.transports.append(tr)
        if self.ovsdb is None:
            peer = OvsdbPeer(self.db)
            tr, _ = await loop.create_connection(lambda: peer, address, ovsdb_port)
            self.ovsdb = peer
            self.transports.append(tr)

    async def dial(self, of_port: int, ovsdb_port: int, deadline: float, address: str = "127.0.0.1") -> bool:
        """connect(), again and again as a real host's reconnect does (1 s apart), until the deadline."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.connect(of_port, ovsdb_port, address), left)
                return True
            except (OSError, TimeoutError):
                await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    @property
    def ready(self) -> bool:
        """The controller has shaken hands on OpenFlow and monitors the OVSDB."""
        return self.switch.features_seen.is_set() and self.ovsdb is not None and self.ovsdb.monitored.is_set()

    def announce(self, vlan: int, mac: str, ip: str) -> int:
        """The VM's gratuitous ARP; returns the packet-ins br1 sent for it."""
        packet, data = garp(vlan, mac, ip)
        return self.switch.inject(packet, data)

    def close(self) -> None:
        for tr in self.transports:
            tr.close()
        self.transports.clear()

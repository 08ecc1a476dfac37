"""Packet-in parsing: what it learns, and that garbage never raises."""

import random
import struct

from controller.model import packets
from tests.unit.world import arp_frame, mac


def test_arp_in_a_vlan_gives_vlan_source_and_sender_ip():
    frame = packets.parse(arp_frame(mac(1), "10.0.0.1", "10.0.0.2", vlan=10))
    assert frame == packets.Frame(10, mac(1), "ff:ff:ff:ff:ff:ff", "10.0.0.1", asks_for="10.0.0.2")


def test_arp_probe_and_proxied_sender_teach_no_binding():
    assert packets.parse(arp_frame(mac(1), "0.0.0.0", "10.0.0.2", vlan=10)).ip is None
    forged = bytearray(arp_frame(mac(1), "10.0.0.1", "10.0.0.2", vlan=10))
    forged[18 + 8:18 + 14] = bytes(6)  # sender hardware address differs from the frame's source
    assert packets.parse(bytes(forged)).ip is None


def test_neighbour_solicitation_and_advertisement():
    def nd(kind, src_ip, target):
        icmp = struct.pack("!BBHI", kind, 0, 0, 0) + bytes.fromhex(target)
        ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + bytes.fromhex(src_ip) + bytes(16)
        return bytes(6) + bytes.fromhex("020000000001") + struct.pack("!H", 0x86DD) + ip6 + icmp
    fd01 = "fd00" + "0" * 27 + "1"
    fd02 = "fd00" + "0" * 27 + "2"
    assert packets.parse(nd(135, fd01, fd02)).ip == "fd00::1"
    assert packets.parse(nd(135, "0" * 32, fd02)).ip is None  # duplicate address detection
    assert packets.parse(nd(136, fd01, fd02)).ip == "fd00::2"


def test_multicast_source_and_truncated_frames_are_rejected():
    assert packets.parse(arp_frame("01:00:5e:00:00:01", "10.0.0.1", "10.0.0.2", vlan=10)) is None
    full = arp_frame(mac(1), "10.0.0.1", "10.0.0.2", vlan=10)
    for cut in (0, 5, 13, 15, 17, 20, 40):
        assert packets.parse(full[:cut]) is None


def test_random_bytes_never_raise():
    rng = random.Random(7)
    for _ in range(3000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 90)))
        if rng.random() < 0.5 and len(data) > 14:  # steer some into the ARP/IPv6 parsers
            data = data[:12] + rng.choice([b"\x08\x06", b"\x86\xdd", b"\x81\x00"]) + data[14:]
        packets.parse(data)

"""OpenFlow 1.3 on the wire, with struct only, for the emulated br1 (bench/emu_of.py): header
and message layouts, OXM match decoding and covering, action/instruction/bucket lists, and the
pieces of multipart replies."""

from __future__ import annotations

import struct

from os_ken.ofproto import ofproto_v1_3 as ofp

VERSION = ofp.OFP_VERSION
HDR = struct.Struct("!BBHI")
FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")  # after the header; the match starts at 48
FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")  # one entry of a flow stats reply, before its match
STATS_REQ = struct.Struct("!B3xII4xQQ")  # flow/aggregate stats request body, before its match
MP_HDR = struct.Struct("!HH4x")
MAX_REPLY = 65000  # bytes per multipart reply message (the length field is 16 bits)
NX_VENDOR = 0x00002320
NXAST_RESUBMIT, NXAST_RESUBMIT_TABLE, NXAST_CLONE = 1, 14, 42
ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}

# OpenFlow basic OXM fields, by field number (os-ken's names).
OXM_NAMES = (
    "in_port", "in_phy_port", "metadata", "eth_dst", "eth_src", "eth_type", "vlan_vid", "vlan_pcp",
    "ip_dscp", "ip_ecn", "ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst",
    "sctp_src", "sctp_dst", "icmpv4_type", "icmpv4_code", "arp_op", "arp_spa", "arp_tpa", "arp_sha",
    "arp_tha", "ipv6_src", "ipv6_dst", "ipv6_flabel", "icmpv6_type", "icmpv6_code", "ipv6_nd_target",
    "ipv6_nd_sll", "ipv6_nd_tll", "mpls_label", "mpls_tc", "mpls_bos", "pbb_isid", "tunnel_id",
    "ipv6_exthdr",
)

Fields = dict[str, tuple[int, int | None]]  # name -> (value, mask or None)


def pad8(n: int) -> int:
    return (n + 7) // 8 * 8


_NAMES: dict[int, str] = {}  # an OXM header's class and field (the upper 23 bits) -> name


def _name(header: int) -> str:
    name = _NAMES.get(header >> 9)
    if name is None:
        cls, field = header >> 16, header >> 9 & 0x7F
        name = _NAMES[header >> 9] = (OXM_NAMES[field] if cls == 0x8000 and field < len(OXM_NAMES)
                                      else f"{cls:#x}:{field}")
    return name


def decode_match(match: bytes) -> Fields:
    """The OXM fields of an ofp_match (header included); other classes under their class:field."""
    length = match[2] << 8 | match[3]
    out: Fields = {}
    i = 4
    from_bytes = int.from_bytes
    while i + 4 <= length:
        header = from_bytes(match[i:i + 4], "big")
        flen = header & 0xFF
        j = i + 4
        if header & 0x100:
            half = flen // 2
            mask = from_bytes(match[j + half:j + flen], "big")
            out[_name(header)] = (from_bytes(match[j:j + half], "big") & mask, mask)
        else:
            out[_name(header)] = (from_bytes(match[j:j + flen], "big"), None)
        i = j + flen
    return out


def covers(request: Fields, flow: Fields) -> bool:
    """Non-strict match: the flow is at least as specific as the request (OpenFlow 1.3 6.4)."""
    for name, (rv, rm) in request.items():
        got = flow.get(name)
        if got is None:
            return False
        fv, fm = got
        if rm is None:
            if fm is not None or fv != rv:
                return False
        elif (fm is not None and fm & rm != rm) or fv & rm != rv:
            return False
    return True


def _tlvs(data: bytes, min_length: int) -> list[tuple[int, bytes]]:
    """(type, bytes) of each type-length record, until one is shorter than min_length."""
    out = []
    i = 0
    while i + 4 <= len(data):
        kind, length = struct.unpack_from("!HH", data, i)
        if length < min_length:
            break
        out.append((kind, data[i:i + length]))
        i += length
    return out


def action_list(data: bytes) -> list[tuple[int, bytes]]:
    """(type, action bytes) of each action in a list (a clone's nested ones are its own list)."""
    return _tlvs(data, 8)


def instructions(data: bytes) -> list[tuple[int, bytes]]:
    return _tlvs(data, 4)




def split(entries: list[bytes]) -> list[tuple[bytes, int]]:
    chunks: list[list[bytes]] = [[]]
    size = 0
    for e in entries:
        if size + len(e) > MAX_REPLY and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(e)
        size += len(e)
    return [(b"".join(c), ofp.OFPMPF_REPLY_MORE if i < len(chunks) - 1 else 0) for i, c in enumerate(chunks)]


def bucket_count(buckets: bytes) -> int:
    n, i = 0, 0
    while i + 2 <= len(buckets):
        length = struct.unpack_from("!H", buckets, i)[0]
        if length < 16:
            break
        n, i = n + 1, i + length
    return n


def port_desc(ofport: int, name: str) -> bytes:
    mac = (0x020000000000 | ofport).to_bytes(6, "big")
    return struct.pack("!I4x6s2x16sIIIIIIII", ofport, mac, name.encode()[:15], 0, 4, 0, 0, 0, 0, 0, 0)

"""The hot path's OpenFlow 1.3 encoder: flow-mods, strict deletes and group-mods, in bytes.

Encoding a flow-mod with os-ken's classes costs ~100 us (objects built, fields converted through
netaddr, serialised piece by piece); at 1,000 hosts that was a third of the controller's time.
Here a message is assembled from pieces: every match field's OXM header, every action's fixed
bytes and every instruction header is encoded once (by os-ken, so the layouts are its own), and
a flow's own values (a MAC, an IP, a VLAN, a port) are converted straight into the slots those
pieces leave for them. Action lists shared by many flows (a tenant's flood, an endpoint's ARP
answer on each of its member hosts) are assembled once per list object.

The result equals os-ken's encoding byte for byte (tests/unit/southbound/test_encoder.py checks
every kind of flow and group the pipeline makes); each field's fast conversion is also checked
against os-ken's the first time a field is seen, and a field that differs, or a value the fast
path does not know (a masked field, a name os-ken alone knows), goes through os-ken's classes.
os-ken stays for everything else: handshakes, parsing, reads, meters (controller/southbound/ofmsg.py).
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Callable
from functools import lru_cache

from os_ken.lib import type_desc
from os_ken.lib.pack_utils import msg_pack_into
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.model import flows as f
from controller.model.memo import ByIdentity

FLOW_MOD_HEAD = struct.Struct("!BBHIQQBBHHHIIIH2x")  # ofp_header + ofp_flow_mod up to the match
ADD_HEAD = struct.Struct("!BBHIQ")  # the same, for an add: its ofp_header and cookie, then
ADD_BODY = struct.Struct("!QBBHHHIIIH2x")  # the rest up to the match (wire_cookie's digest starts here)
GROUP_MOD_HEAD = struct.Struct("!BBHIHBxI")  # ofp_header + ofp_group_mod
BUCKET_HEAD = struct.Struct("!HHII4x")  # len, weight, watch_port, watch_group
MATCH_HEAD = struct.Struct("!HH")
_OUTPUT = struct.Struct("!HHIH6x")
_GROUP = struct.Struct("!HHI")
_PUSH_VLAN = struct.Struct("!HHH2x")
_TL = struct.Struct("!HH")
_METER = struct.Struct("!HHI")
_APPLY = struct.Struct("!HH4x")
_GOTO = struct.Struct("!HHB3x")
POP_VLAN = struct.pack("!HH4x", ofp.OFPAT_POP_VLAN, 8)
ADD, MODIFY, DELETE = "add", "modify", "delete"
GROUP_COMMANDS = {ADD: ofp.OFPGC_ADD, MODIFY: ofp.OFPGC_MODIFY, DELETE: ofp.OFPGC_DELETE}
NX_VENDOR = 0x00002320
NXAST_CLONE = 42
# OVS's Ericsson-class OXM fields for the ICMPv6 ND header (os-ken does not know them).
ERICSSON_OXM = {"nd_reserved": (0x1000, 1, 4), "nd_options_type": (0x1000, 2, 1)}
IDENTITY_CACHE = 1 << 13  # action lists remembered by identity, per generation (memo.py)


# ---- values: what os-ken's type descriptions make of a user value, without netaddr -------------

def _mac(value: str) -> bytes:
    b = bytes.fromhex(value.replace(":", ""))
    if len(b) != 6:
        raise ValueError(value)
    return b


def _ipv4(value: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, value)


def _ipv6(value: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, value)


def _int(size: int) -> Callable[[int], bytes]:
    mask = (1 << 8 * size) - 1
    return lambda value: (value & mask).to_bytes(size, "big")


def _converter(name: str) -> Callable[[object], bytes] | None:
    field = _OXM_BY_NAME.get(name)
    if field is None:
        return None
    if field.type is type_desc.MacAddr:
        return _mac  # type: ignore[return-value]
    if field.type is type_desc.IPv4Addr:
        return _ipv4  # type: ignore[return-value]
    if field.type is type_desc.IPv6Addr:
        return _ipv6  # type: ignore[return-value]
    if isinstance(field.type, type_desc.IntDescr):
        return _int(field.type.size)  # type: ignore[return-value]
    return None


_OXM_BY_NAME = {fd.name: fd for fd in ofp.oxm_types}


class _Field:
    """One OXM field: os-ken's sort key and header, and the fast conversion of its values."""

    __slots__ = ("key", "header", "convert")

    def __init__(self, key: int, header: bytes, convert: Callable[[object], bytes] | None) -> None:
        self.key, self.header, self.convert = key, header, convert


def _oxm_slow(name: str, value: object) -> tuple[int, bytes]:
    """One match field as OFPMatch encodes it (normalised, and through its user form and back),
    with the key OFPMatch sorts fields by."""
    k, uv = ofp.oxm_normalize_user(name, value)
    n, v, m = ofp.oxm_from_user(k, uv)
    key = n[0] if isinstance(n, tuple) else n
    n, v, m = ofp.oxm_from_user(*ofp.oxm_to_user(n, v, m))
    buf = bytearray()
    ofp.oxm_serialize(n, v, m, buf, 0)
    return key, bytes(buf)


_FIELDS: dict[str, _Field] = {}


def _field(name: str, value: object) -> _Field:
    """The field's pieces, made from its first (unmasked) value and checked against os-ken's."""
    fd = _FIELDS.get(name)
    if fd is None:
        key, tlv = _oxm_slow(name, value)
        convert = _converter(name)
        header = tlv[:4]
        try:
            if convert is None or header + convert(value) != tlv:
                convert = None
        except (ValueError, OSError, TypeError, AttributeError):
            convert = None
        fd = _FIELDS[name] = _Field(key, header, convert)
    return fd


def _tlv(name: str, value: object) -> tuple[int, bytes]:
    if value.__class__ is not tuple:
        fd = _field(name, value)
        if fd.convert is not None:
            try:
                return fd.key, fd.header + fd.convert(value)
            except (ValueError, OSError, TypeError, AttributeError):
                pass  # os-ken decides what such a value is (and raises if it is nothing)
    return _oxm_cached(name, value)


@lru_cache(maxsize=1 << 12)
def _oxm_cached(name: str, value: object) -> tuple[int, bytes]:
    return _oxm_slow(name, value)  # masked fields: a handful of distinct ones (broadcast bits, VLAN masks)


_TLVS: dict[tuple[str, object], tuple[int, bytes]] = {}  # (name, value) -> (sort key, TLV)
TLV_CACHE = 1 << 16  # a VLAN, a MAC, an IP recur in several flows on several hosts


def _item(item: tuple[str, object]) -> tuple[int, bytes]:
    kt = _TLVS.get(item)
    if kt is None:
        kt = _tlv(*item)
        if len(_TLVS) >= TLV_CACHE:
            _TLVS.clear()
        _TLVS[item] = kt
    return kt


def match_bytes(m: f.Match) -> bytes:
    """What OFPMatch(**dict(m)).serialize() writes."""
    tlvs = _TLVS
    fields = [tlvs.get(item) or _item(item) for item in m]
    if len(fields) > 1:
        fields.sort()  # by OXM number, as OFPMatch's (fields differ: the bytes are never compared)
    body = b"".join([tlv for _, tlv in fields])
    length = 4 + len(body)
    return MATCH_HEAD.pack(ofp.OFPMT_OXM, length) + body + bytes(-length % 8)


# ---- actions ----------------------------------------------------------------------------------

def _os_ken_bytes(action: parser.OFPAction) -> bytes:
    buf = bytearray()
    action.serialize(buf, 0)
    return bytes(buf).ljust(action.len, b"\0")  # learn() writes less than its length: the rest is padding


def _set_field(name: str, value: object) -> bytes:
    if value.__class__ is not tuple:
        fd = _field(name, value)
        if fd.convert is not None:
            try:
                tlv = fd.header + fd.convert(value)
            except (ValueError, OSError, TypeError, AttributeError):
                pass
            else:
                length = (4 + len(tlv) + 7) // 8 * 8
                return _TL.pack(ofp.OFPAT_SET_FIELD, length) + tlv + bytes(length - 4 - len(tlv))
    return _os_ken_bytes(parser.OFPActionSetField(**{name: value}))


class RawAction(parser.OFPAction):
    """An action os-ken cannot express, given as its wire bytes."""

    cls_action_type = 0xFFFF
    cls_action_len = 0

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data
        self.len = len(data)

    def serialize(self, buf: bytearray, offset: int) -> None:
        msg_pack_into(f"!{self.len}s", buf, offset, self.data)


def _set_ericsson_field(name: str, value: int) -> RawAction:
    oxm_class, field, size = ERICSSON_OXM[name]
    tlv = struct.pack("!HBB", oxm_class, field << 1, size) + value.to_bytes(size, "big")
    length = (4 + len(tlv) + 7) // 8 * 8
    return RawAction(struct.pack("!HH", ofp.OFPAT_SET_FIELD, length) + tlv.ljust(length - 4, b"\0"))


def _learn(a: f.Learn) -> parser.NXActionLearn:
    """The article's learn(): VLAN + MAC -> strip VLAN, same tunnel ID, back out the tunnel it came in

    (on a flow-based port: back to the host it came from, tun_src -> tun_dst)."""
    specs = [
        parser.NXFlowSpecMatch(src=("vlan_tci", 0), dst=("vlan_tci", 0), n_bits=12),
        parser.NXFlowSpecMatch(src=("eth_src_nxm", 0), dst=("eth_dst_nxm", 0), n_bits=48),
        parser.NXFlowSpecLoad(src=0, dst=("vlan_tci", 0), n_bits=16),
        parser.NXFlowSpecLoad(src=("tunnel_id_nxm", 0), dst=("tunnel_id_nxm", 0), n_bits=64),
    ]
    if a.tun_dst_from_src:
        specs.append(parser.NXFlowSpecLoad(src=("tun_ipv4_src", 0), dst=("tun_ipv4_dst", 0), n_bits=32))
    specs.append(parser.NXFlowSpecOutput(src=("in_port_nxm", 0), dst="", n_bits=16))
    return parser.NXActionLearn(table_id=a.table, priority=a.priority, hard_timeout=a.hard_timeout,
                                specs=specs)


def action(a: f.Action) -> parser.OFPAction:
    """An action as os-ken's class (the reference; and how rare actions are encoded)."""
    if isinstance(a, f.Output):
        return parser.OFPActionOutput(a.port, a.max_len)
    if isinstance(a, f.PushVlan):
        return parser.OFPActionPushVlan(a.ethertype)
    if isinstance(a, f.PopVlan):
        return parser.OFPActionPopVlan()
    if isinstance(a, f.SetField):
        if a.field in ERICSSON_OXM:
            return _set_ericsson_field(a.field, int(a.value))
        return parser.OFPActionSetField(**{a.field: a.value})
    if isinstance(a, f.Move):
        return parser.NXActionRegMove(src_field=a.src, dst_field=a.dst, n_bits=a.n_bits)
    if isinstance(a, f.Group):
        return parser.OFPActionGroup(a.group_id)
    if isinstance(a, f.Resubmit):
        return parser.NXActionResubmitTable(in_port=0xFFF8, table_id=a.table)
    if isinstance(a, f.Learn):
        return _learn(a)
    if isinstance(a, f.Clone):
        body = b"".join(_os_ken_bytes(action(x)) for x in a.actions)
        return RawAction(struct.pack("!HHIH6x", ofp.OFPAT_EXPERIMENTER, 16 + len(body), NX_VENDOR, NXAST_CLONE) + body)
    raise TypeError(f"no encoding for {a!r}")


@lru_cache(maxsize=1 << 10)
def _rare_action(a: f.Action) -> bytes:
    """Actions with few distinct values (moves, resubmits, learn(), clones, ND fields): os-ken's bytes,
    once each."""
    return _os_ken_bytes(action(a))


def action_bytes(a: f.Action) -> bytes:
    kind = type(a)
    if kind is f.SetField and a.field not in ERICSSON_OXM:
        return _set_field(a.field, a.value)
    if kind is f.Output:
        return _OUTPUT.pack(ofp.OFPAT_OUTPUT, 16, a.port, a.max_len)
    if kind is f.PopVlan:
        return POP_VLAN
    if kind is f.PushVlan:
        return _PUSH_VLAN.pack(ofp.OFPAT_PUSH_VLAN, 8, a.ethertype)
    if kind is f.Group:
        return _GROUP.pack(ofp.OFPAT_GROUP, 8, a.group_id)
    return _rare_action(a)


def _actions(actions: tuple) -> bytes:
    return b"".join([action_bytes(a) for a in actions])


_ACTIONS = ByIdentity(_actions, IDENTITY_CACHE)  # the same tuple goes to every member host


def actions_bytes(actions: tuple) -> bytes:
    return _ACTIONS(actions) if actions else b""


def instructions(meter: int | None, actions: tuple, goto: int | None) -> bytes:
    """Meter, apply-actions and goto-table instructions, in os-ken's order (ofmsg._instructions)."""
    out = b""
    if meter is not None:
        out = _METER.pack(ofp.OFPIT_METER, 8, meter)
    if actions:
        body = _ACTIONS(actions)
        out += _APPLY.pack(ofp.OFPIT_APPLY_ACTIONS, 8 + len(body)) + body
    if goto is not None:
        out += _GOTO.pack(ofp.OFPIT_GOTO_TABLE, 8, goto)
    return out


# ---- messages ---------------------------------------------------------------------------------

def flow_mod(fl: f.Flow) -> bytes:
    """The add (xid 0): what ofmsg.flow_mod_slow makes with os-ken's classes. Kept on the flow:
    an endpoint's entries are one flow for every host they are equal on (pipeline/desired.py)."""
    add = fl._add
    if not add:
        body = _add_body(fl) if fl._base is None else _on_vlan_body(fl)
        add = fl._add = ADD_HEAD.pack(ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, ADD_HEAD.size + len(body), 0,
                                      _cookie(fl, body)) + body
    return add


def wire_cookie(fl: f.Flow) -> int:
    """The cookie flow_mod writes: owner and role (flows.py), and 24 bits of a CRC-32 of everything
    after the cookie (table, timeouts, priority, flags, match, instructions), made from the bytes
    the add is made of anyway. A flow read back with this key and cookie is this flow."""
    return ADD_HEAD.unpack_from(flow_mod(fl))[-1]


def _cookie(fl: f.Flow, body: bytes) -> int:
    return fl.owner_cookie | zlib.crc32(body) & f.DIGEST_MASK


def _vlan_pieces(base: f.Flow) -> tuple[int, bytes, bytes] | None:
    """A flow's add body cut around its VLAN's value: (the VLAN's place in the match, the bytes before
    the value, the bytes after), or None where it cannot be patched (a masked VLAN)."""
    at = f.vlan_at(base.match)
    if at is None or base.match[at][1].__class__ is not int:
        return None
    vid = base.match[at][1]
    key, tlv = _item(("vlan_vid", vid))
    before = 0
    for item in base.match:
        other, other_tlv = _item(item)
        if other < key:
            before += len(other_tlv)
    body = flow_mod(base)[ADD_HEAD.size:]  # made for base's own host anyway
    start = ADD_BODY.size + MATCH_HEAD.size + before + len(tlv) - _VID.size
    if body[start - len(tlv) + _VID.size:start + _VID.size] != tlv:
        return None
    return at, body[:start], body[start + _VID.size:]


_VID = struct.Struct("!H")
_PIECES = ByIdentity(_vlan_pieces, IDENTITY_CACHE)  # an endpoint's entries on each of its member hosts


def _on_vlan_body(fl: f.Flow) -> bytes:
    """flows.on_vlan's flow: its base's bytes with its own VLAN in them (what _add_body makes)."""
    pieces = _PIECES(fl._base)
    if pieces is None:
        return _add_body(fl)
    at, before, after = pieces
    return before + _VID.pack(fl.match[at][1]) + after


def _add_body(fl: f.Flow) -> bytes:
    flags = ofp.OFPFF_SEND_FLOW_REM if fl.notify_removed else 0
    return ADD_BODY.pack(0, fl.table, ofp.OFPFC_ADD, fl.idle_timeout, fl.hard_timeout, fl.priority, ofp.OFP_NO_BUFFER,
                         0, 0, flags) + match_bytes(fl.match) + instructions(fl.meter, fl.actions, fl.goto)


def delete_strict(table: int, priority: int, match: f.Match) -> bytes:
    """Strict delete by key, any port, any group, any cookie."""
    m = match_bytes(match)
    return FLOW_MOD_HEAD.pack(ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, FLOW_MOD_HEAD.size + len(m), 0, 0, 0, table,
                              ofp.OFPFC_DELETE_STRICT, 0, 0, priority, ofp.OFP_NO_BUFFER, ofp.OFPP_ANY,
                              ofp.OFPG_ANY, 0) + m


def bucket_bytes(b: f.Bucket) -> bytes:
    body = actions_bytes(b.actions)
    return BUCKET_HEAD.pack(BUCKET_HEAD.size + len(body), 0, ofp.OFPP_ANY, ofp.OFPG_ANY) + body


def group_mod(group: f.GroupEntry, command: str) -> bytes:
    """An ALL group's add, modify or delete (a delete lists no buckets: OVS refuses one that does)."""
    body = b"" if command == DELETE else b"".join([bucket_bytes(b) for b in group.buckets])
    return GROUP_MOD_HEAD.pack(ofp.OFP_VERSION, ofp.OFPT_GROUP_MOD, GROUP_MOD_HEAD.size + len(body), 0,
                               GROUP_COMMANDS[command], ofp.OFPGT_ALL, group.group_id) + body


def clear_caches() -> None:
    """Forget every encoding made (the benchmark's encoder bound measures from nothing)."""
    _FIELDS.clear()
    _TLVS.clear()
    _ACTIONS.clear()
    _PIECES.clear()
    _oxm_cached.cache_clear()
    _rare_action.cache_clear()

"""The only place that turns operations into OpenFlow 1.3 bytes.

Encoding with os-ken objects is the expensive part of talking to a switch (lab/README.md: ~180 us a
flow-mod), so each distinct message is encoded once and cached, and a batch of operations is
written to the switch as a few large writes followed by one barrier.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from functools import lru_cache

from os_ken.lib.pack_utils import msg_pack_into
from os_ken.ofproto import ofproto_protocol
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.model import flows as f
from controller.model.ops import FlowDelete, FlowMod, FlowPurge, GroupMod, MeterMod, Op, ReadSwitch, Wipe

_DP = ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION)
WRITE_BATCH = 256  # messages per socket write
NX_VENDOR = 0x00002320
NXAST_CLONE = 42
# OVS's Ericsson-class OXM fields for the ICMPv6 ND header (os-ken does not know them).
ERICSSON_OXM = {"nd_reserved": (0x1000, 1, 4), "nd_options_type": (0x1000, 2, 1)}


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


def _action_bytes(actions: list) -> bytes:
    buf = bytearray()
    offset = 0
    for a in actions:
        a.serialize(buf, offset)
        offset += a.len
    return bytes(buf)


def _clone(nested: list) -> RawAction:
    body = _action_bytes(nested)
    header = struct.pack("!HHIH6x", ofp.OFPAT_EXPERIMENTER, 16 + len(body), NX_VENDOR, NXAST_CLONE)
    return RawAction(header + body)


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
        return _clone([action(x) for x in a.actions])
    raise TypeError(f"no encoding for {a!r}")


def _serialize(msg: parser.MsgBase) -> bytes:
    msg.xid = 0
    msg.serialize()
    return bytes(msg.buf)


def _instructions(meter: int | None, actions: tuple, goto: int | None) -> list:
    inst: list = []
    if meter is not None:
        inst.append(parser.OFPInstructionMeter(meter))
    if actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [action(a) for a in actions]))
    if goto is not None:
        inst.append(parser.OFPInstructionGotoTable(goto))
    return inst


def flow_mod_slow(flow: f.Flow) -> bytes:
    """The add as os-ken encodes it whole: the reference flow_mod must equal (tests)."""
    flags = ofp.OFPFF_SEND_FLOW_REM if flow.notify_removed else 0
    msg = parser.OFPFlowMod(_DP, cookie=flow.wire_cookie, table_id=flow.table, command=ofp.OFPFC_ADD,
                            idle_timeout=flow.idle_timeout, hard_timeout=flow.hard_timeout,
                            priority=flow.priority, flags=flags,
                            match=parser.OFPMatch(**dict(flow.match)),
                            instructions=_instructions(flow.meter, flow.actions, flow.goto))
    return _serialize(msg)


# Encoding whole messages with os-ken costs ~100 us a flow-mod. Most flows share their match or
# their instructions with others (the same entry on many hosts, the same actions toward a port),
# so those parts are encoded once and the fixed header is packed around them.
_FLOW_MOD_FIXED = struct.Struct("!BBHIQQBBHHHIIIH2x")  # ofp_header + ofp_flow_mod up to the match


@lru_cache(maxsize=1 << 16)
def _oxm_field(name: str, value: object) -> tuple[int, bytes]:
    """One match field encoded as OFPMatch encodes it (normalised, and through its user form and
    back), with the key OFPMatch sorts fields by: most fields recur across matches (a VLAN, a
    tunnel ID, a port), so each is converted once, not once per match (os-ken's conversion of
    MAC and IP strings was a fifth of the controller's time at 1,000 hosts)."""
    k, uv = ofp.oxm_normalize_user(name, value)
    n, v, m = ofp.oxm_from_user(k, uv)
    key = n[0] if isinstance(n, tuple) else n
    n, v, m = ofp.oxm_from_user(*ofp.oxm_to_user(n, v, m))
    buf = bytearray()
    ofp.oxm_serialize(n, v, m, buf, 0)
    return key, bytes(buf)


_MATCH_HDR = struct.Struct("!HH")


@lru_cache(maxsize=1 << 17)
def _match_bytes(m: f.Match) -> bytes:
    """What OFPMatch(**dict(m)).serialize() writes (tests), from fields encoded once each."""
    fields = sorted((_oxm_field(k, v) for k, v in m), key=lambda kf: kf[0])  # stable, as OFPMatch's
    body = b"".join(b for _, b in fields)
    length = _MATCH_HDR.size + len(body)
    return _MATCH_HDR.pack(ofp.OFPMT_OXM, length) + body + bytes(-length % 8)


@lru_cache(maxsize=1 << 17)
def _instruction_bytes(meter: int | None, actions: tuple, goto: int | None) -> bytes:
    buf = bytearray()
    offset = 0
    for inst in _instructions(meter, actions, goto):
        inst.serialize(buf, offset)
        offset = len(buf)
    return bytes(buf)


@lru_cache(maxsize=1 << 17)
def flow_mod(flow: f.Flow, delete: bool = False) -> bytes:
    if delete:
        return _delete_strict(flow.table, flow.priority, flow.match)
    match = _match_bytes(flow.match)
    inst = _instruction_bytes(flow.meter, flow.actions, flow.goto)
    flags = ofp.OFPFF_SEND_FLOW_REM if flow.notify_removed else 0
    head = _FLOW_MOD_FIXED.pack(ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, _FLOW_MOD_FIXED.size + len(match) + len(inst),
                                0, flow.wire_cookie, 0, flow.table, ofp.OFPFC_ADD, flow.idle_timeout,
                                flow.hard_timeout, flow.priority, ofp.OFP_NO_BUFFER, 0, 0, flags)
    return head + match + inst


def _group_mod(op: GroupMod) -> bytes:
    command = {"add": ofp.OFPGC_ADD, "modify": ofp.OFPGC_MODIFY, "delete": ofp.OFPGC_DELETE}[op.command]
    buckets = [] if op.command == "delete" else [  # OVS refuses a delete that lists buckets
        parser.OFPBucket(actions=[action(a) for a in b.actions]) for b in op.group.buckets]
    return _serialize(parser.OFPGroupMod(_DP, command, ofp.OFPGT_ALL, op.group.group_id, buckets))


def _meter_mod(op: MeterMod) -> bytes:
    command = {"add": ofp.OFPMC_ADD, "modify": ofp.OFPMC_MODIFY, "delete": ofp.OFPMC_DELETE}[op.command]
    bands = [parser.OFPMeterBandDrop(rate=op.meter.rate_pps, burst_size=op.meter.burst)]
    flags = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
    return _serialize(parser.OFPMeterMod(_DP, command, flags, op.meter.meter_id, bands))


def _wipe() -> list[bytes]:
    return [
        _serialize(parser.OFPFlowMod(_DP, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                                     out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)),
        _serialize(parser.OFPGroupMod(_DP, ofp.OFPGC_DELETE, 0, ofp.OFPG_ALL)),
        _serialize(parser.OFPMeterMod(_DP, ofp.OFPMC_DELETE, 0, ofp.OFPM_ALL)),
    ]


@lru_cache(maxsize=65536)
def _delete_strict(table: int, priority: int, match: f.Match) -> bytes:
    return _serialize(parser.OFPFlowMod(_DP, table_id=table, command=ofp.OFPFC_DELETE_STRICT, priority=priority,
                                        match=parser.OFPMatch(**dict(match)), out_port=ofp.OFPP_ANY,
                                        out_group=ofp.OFPG_ANY))


def read_switch() -> list[bytes]:
    """Everything a switch holds: all flows (with cookies), group ids, meter ids."""
    return [
        _serialize(parser.OFPFlowStatsRequest(_DP, table_id=ofp.OFPTT_ALL, out_port=ofp.OFPP_ANY,
                                              out_group=ofp.OFPG_ANY)),
        _serialize(parser.OFPGroupDescStatsRequest(_DP)),
        _serialize(parser.OFPMeterConfigStatsRequest(_DP, meter_id=ofp.OFPM_ALL)),
    ]


def role_stats_request(role: int) -> parser.OFPAggregateStatsRequest:
    """Packets of every flow with this role, summed by the switch (cookie-masked aggregate)."""
    return parser.OFPAggregateStatsRequest(_DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                           role << f.ROLE_SHIFT, f.ROLE_MASK, parser.OFPMatch())


@lru_cache(maxsize=1 << 18)
def canonical_match(m: f.Match) -> f.Match:
    """A match as the switch writes it back (os-ken's parse of our encoding)."""
    buf = bytearray()
    parser.OFPMatch(**dict(m)).serialize(buf, 0)
    return tuple(sorted(parser.OFPMatch.parser(bytes(buf), 0).items()))


def _purge(op: FlowPurge) -> bytes:
    return _serialize(parser.OFPFlowMod(_DP, table_id=op.table, command=ofp.OFPFC_DELETE,
                                        match=parser.OFPMatch(**dict(op.match)),
                                        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))


def encode(op: Op) -> list[bytes]:
    if isinstance(op, FlowMod):
        return [flow_mod(op.flow, op.delete)]
    if isinstance(op, FlowDelete):
        return [_delete_strict(op.table, op.priority, op.match)]
    if isinstance(op, ReadSwitch):
        return read_switch()
    if isinstance(op, GroupMod):
        return [_group_mod(op)]
    if isinstance(op, MeterMod):
        return [_meter_mod(op)]
    if isinstance(op, Wipe):
        return _wipe()
    if isinstance(op, FlowPurge):
        return [_purge(op)]
    raise TypeError(f"not an OpenFlow operation: {op!r}")


def per_datapath(ops: Iterable[Op]) -> dict[int, list[Op]]:
    """The operations per datapath, in their order."""
    per_dp: dict[int, list[Op]] = {}
    for op in ops:
        per_dp.setdefault(op.dpid, []).append(op)  # type: ignore[union-attr]
    return per_dp


def writes(ops: list[Op]) -> list[bytes]:
    """One datapath's operations encoded: WRITE_BATCH messages joined per write."""
    msgs = [m for op in ops for m in encode(op)]
    return [b"".join(msgs[i:i + WRITE_BATCH]) for i in range(0, len(msgs), WRITE_BATCH)]


def batches(ops: Iterable[Op]) -> dict[int, list[bytes]]:
    """Per datapath, the writes for these operations."""
    return {dpid: writes(dp_ops) for dpid, dp_ops in per_datapath(ops).items()}


def barrier() -> parser.OFPBarrierRequest:
    return parser.OFPBarrierRequest(_DP)


def echo_request() -> parser.OFPEchoRequest:
    """Is the switch still there? (controller/shell/identity.py asks, when another claims its place.)"""
    return parser.OFPEchoRequest(_DP)


ROLES = {"master": ofp.OFPCR_ROLE_MASTER, "slave": ofp.OFPCR_ROLE_SLAVE, "equal": ofp.OFPCR_ROLE_EQUAL}
ROLE_NAMES = {code: name for name, code in ROLES.items()}


def role_request(role: str, generation: int) -> parser.OFPRoleRequest:
    """MASTER or SLAVE with a generation ID: the switch refuses one older than it has seen (STALE)."""
    return parser.OFPRoleRequest(_DP, ROLES[role], generation & 0xFFFF_FFFF_FFFF_FFFF)


def refused_as_stale(err_type: int, code: int) -> bool:
    """An error that says another controller is master now: a stale generation, or we are slave."""
    return (err_type, code) in ((ofp.OFPET_ROLE_REQUEST_FAILED, ofp.OFPRRFC_STALE),
                                (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE))

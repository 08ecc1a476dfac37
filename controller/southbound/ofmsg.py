"""OpenFlow 1.3 messages for the shell: operations to bytes per switch, reads, barriers, roles.

The hot path (flow-mods, strict deletes, group-mods) is encoded in bytes by encoder.py, and a
barrier (one with every batch) is packed here; the rest (read-backs, meters, wipes, purges, role
requests) is rare and goes through os-ken's classes, which are also the reference the fast
encodings are tested against (flow_mod_slow, group_mod_slow). A batch of operations goes to a
switch as one write.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from os_ken.ofproto import ofproto_protocol
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.model import flows as f
from controller.model.ops import FlowDelete, FlowMod, FlowPurge, GroupMod, MeterMod, Op, ReadSwitch, Wipe
from controller.southbound import encoder

_DP = ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION)
action = encoder.action  # os-ken's form of an action


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
    msg = parser.OFPFlowMod(_DP, cookie=encoder.wire_cookie(flow), table_id=flow.table, command=ofp.OFPFC_ADD,
                            idle_timeout=flow.idle_timeout, hard_timeout=flow.hard_timeout,
                            priority=flow.priority, flags=flags,
                            match=parser.OFPMatch(**dict(flow.match)),
                            instructions=_instructions(flow.meter, flow.actions, flow.goto))
    return _serialize(msg)


def flow_mod(flow: f.Flow, delete: bool = False) -> bytes:
    """A flow's add, or its strict delete by key (encoder.py)."""
    if delete:
        return encoder.delete_strict(flow.table, flow.priority, flow.match)
    return encoder.flow_mod(flow)


def group_mod_slow(op: GroupMod) -> bytes:
    """A group-mod as os-ken encodes it: the reference encoder.group_mod must equal (tests)."""
    command = {"add": ofp.OFPGC_ADD, "modify": ofp.OFPGC_MODIFY, "delete": ofp.OFPGC_DELETE}[op.command]
    buckets = [] if op.command == "delete" else [  # OVS refuses a delete that lists buckets
        parser.OFPBucket(actions=[action(a) for a in b.actions]) for b in op.group.buckets]
    return _serialize(parser.OFPGroupMod(_DP, command, ofp.OFPGT_ALL, op.group.group_id, buckets))


def delete_strict_slow(table: int, priority: int, match: f.Match) -> bytes:
    """A strict delete as os-ken encodes it (tests)."""
    return _serialize(parser.OFPFlowMod(_DP, table_id=table, command=ofp.OFPFC_DELETE_STRICT, priority=priority,
                                        match=parser.OFPMatch(**dict(match)), out_port=ofp.OFPP_ANY,
                                        out_group=ofp.OFPG_ANY))


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
    kind = type(op)
    if kind is FlowMod:
        return [flow_mod(op.flow, op.delete)]  # type: ignore[union-attr]
    if kind is FlowDelete:
        return [encoder.delete_strict(op.table, op.priority, op.match)]  # type: ignore[union-attr]
    if kind is GroupMod:
        return [encoder.group_mod(op.group, op.command)]  # type: ignore[union-attr]
    if isinstance(op, ReadSwitch):
        return read_switch()
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


def write(ops: list[Op]) -> bytes:
    """One datapath's operations encoded, as one write."""
    add = encoder.flow_mod
    return b"".join([add(op.flow) if type(op) is FlowMod and not op.delete else b"".join(encode(op))  # type: ignore
                     for op in ops])


def batches(ops: Iterable[Op]) -> dict[int, bytes]:
    """Per datapath, the write for these operations."""
    return {dpid: write(dp_ops) for dpid, dp_ops in per_datapath(ops).items()}


HEADER = struct.Struct("!BBHI")  # ofp_header: version, type, length, xid


class _Numbered:
    """What a switch's set_xid numbers (os-ken's Datapath, or a test's): a barrier's xid."""

    __slots__ = ("xid",)

    def set_xid(self, xid: int) -> None:
        self.xid = xid


def barrier(dp: Any) -> tuple[int, bytes]:
    """A barrier request for the switch, numbered by it: (xid, bytes). Packed here, not by os-ken's
    class (a message object, serialised): one goes with every batch written."""
    numbered = _Numbered()
    dp.set_xid(numbered)
    return numbered.xid, HEADER.pack(ofp.OFP_VERSION, ofp.OFPT_BARRIER_REQUEST, HEADER.size, numbered.xid)


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

"""A small overlay in memory: hosts as the OVSDB would show them, a Core driven by events."""

from __future__ import annotations

import struct

from controller.core.admission import HostPolicy
from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model import flows as f
from controller.model.ops import FlowDelete, FlowMod, GroupMod, Op
from controller.model.state import HostView, Tenant, TunnelPort
from controller.pipeline.settings import Settings
from controller.pipeline.trace import Tracer
from controller.shell.config import defaults
from controller.southbound.encoder import wire_cookie

PATCH = 1
BLUE = Tenant("blue", 5001, 10)
RED = Tenant("red", 5002, 20)


def ip_of(i: int) -> str:
    return f"10.99.0.{i}"


def view(i: int, peers: list[int], tunnel_type: str = "vxlan", member_vlans: frozenset = frozenset(),
         managed: bool = True) -> HostView:
    """Host i with a tunnel to each peer j on ofport 10 + j."""
    tunnels = tuple(TunnelPort(f"t{j}", tunnel_type, ip_of(j), 10 + j, managed, f"port-uuid-{i}-{j}")
                    for j in peers)
    return HostView(f"h{i}", ip_of(i), datapath_id=i, bridge_uuid=f"br-uuid-{i}", patch_ofport=PATCH,
                    tunnels=tunnels, member_vlans=member_vlans)


def tunnel_port(j: int) -> int:
    return 10 + j


def world(n: int = 3, settings: Settings | None = None, tenants=(BLUE, RED),
          members: dict[int, frozenset] | None = None, policy: HostPolicy | None = None) -> Core:
    """n hosts, meshed; by default every host has a VM port in every tenant's VLAN (members=
    says otherwise: host number -> VLANs tagged on its br0). `policy`: which may join (default: all)."""
    core = Core(settings or defaults(), list(tenants), policy=policy, cookie_of=wire_cookie)
    if members is None:
        members = {i: frozenset(tn.vlan for tn in tenants) for i in range(1, n + 1)}
    for i in range(1, n + 1):
        core.datapath_up(i)
        core.switch_read(i, SwitchDump(), now=0.0)  # a fresh switch holds nothing
    for i in range(1, n + 1):
        peers = [j for j in range(1, n + 1) if j != i]
        core.host_view(view(i, peers, member_vlans=members.get(i, frozenset())), now=0.0)
    return core


def installed_flows(core: Core, dpid: int) -> list[f.Flow]:
    """The flows the core installed on a switch (as the read model gives them)."""
    host = core.host_of_dpid(dpid)
    assert host is not None
    return core.read.installed_flows(host) or []


def tracer(core: Core, dpid: int) -> Tracer:
    inst = core.installed[dpid]
    return Tracer(installed_flows(core, dpid), [g for g in inst.groups.values() if g is not None])


def flow_ops(ops: list[Op], dpid: int | None = None) -> list[FlowMod]:
    return [op for op in ops if isinstance(op, FlowMod) and (dpid is None or op.dpid == dpid)]


def held(core: Core, dpid: int) -> dict:
    """The flows the core believes a switch holds, by key."""
    return {fl.key: fl for fl in installed_flows(core, dpid)}


def replayed(flows: dict, ops: list[Op], dpid: int) -> dict:
    """What a switch that held flows holds once ops went out in order: an add replaces the flow of
    its key, a delete is strict (by key)."""
    out = dict(flows)
    for op in ops:
        if isinstance(op, FlowMod) and op.dpid == dpid:
            if op.delete:
                out.pop(op.flow.key, None)
            else:
                out[op.flow.key] = op.flow
        elif isinstance(op, FlowDelete) and op.dpid == dpid:
            out.pop((op.table, op.priority, op.match), None)
    return out


def flow_changes(ops: list[Op], dpid: int | None = None) -> list[tuple[tuple, bool]]:
    """(key, deleted) of every flow an operation adds or deletes, in order."""
    out = []
    for op in ops:
        if dpid is not None and getattr(op, "dpid", None) != dpid:
            continue
        if isinstance(op, FlowMod):
            out.append((op.flow.key, op.delete))
        elif isinstance(op, FlowDelete):
            out.append(((op.table, op.priority, op.match), True))
    return out


def group_ops(ops: list[Op]) -> list[GroupMod]:
    return [op for op in ops if isinstance(op, GroupMod)]


def mac(i: int) -> str:
    return f"02:00:00:00:00:{i:02x}"


def mac_bytes(m: str) -> bytes:
    return bytes.fromhex(m.replace(":", ""))


def arp_frame(src_mac: str, src_ip: str, dst_ip: str, vlan: int | None, op: int = 1,
              dst_mac: str = "ff:ff:ff:ff:ff:ff") -> bytes:
    eth = mac_bytes(dst_mac) + mac_bytes(src_mac)
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    eth += struct.pack("!H", 0x0806)
    tha = b"\0" * 6 if op == 1 else mac_bytes(dst_mac)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac_bytes(src_mac) + bytes(map(int, src_ip.split(".")))
    arp += tha + bytes(map(int, dst_ip.split(".")))
    return eth + arp


def local_packet(vlan: int, src: str, dst: str, **fields) -> dict:
    """A frame as br1 sees it arriving from br0: tagged with the host's VLAN of the tenant."""
    return {"in_port": PATCH, "vlan_vid": vlan | f.OFPVID_PRESENT, "eth_src": src, "eth_dst": dst,
            "eth_type": 0x0800, **fields}


def arp_request(vlan: int, src: str, spa: str, tpa: str) -> dict:
    return local_packet(vlan, src, "ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=1, arp_sha=src,
                        arp_spa=spa, arp_tha="00:00:00:00:00:00", arp_tpa=tpa)

"""How MACs are learned: `[overlay] mac_learning = controller | learn`, chosen once.

controller  the controller learns at the edge (metered punts from the learning tables), installs
            every endpoint's entries where its tenant lives, answers ARP/ND in the switch and
            floods only to hosts with members (the default).
learn       the article's pipeline: the switch's own learn() action, floods to every host of
            the tenant (the baseline the benchmarks compare against).

Everything that differs between the two is here, as one object per mode (as Faucet picks its
flood manager once); the pipeline and the core ask that object and never compare mode names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.model import flows as f
from controller.model import tables as t
from controller.model.choices import by_name
from controller.model.packets import Frame, is_multicast
from controller.model.state import Tenant

MODE_CONTROLLER = "controller"
MODE_LEARN = "learn"


_PUNT = (f.Output(f.OFPP_CONTROLLER),)


def punt() -> tuple[f.Action, ...]:
    return _PUNT  # one object: its repr and encoding are made once


@dataclass(frozen=True)
class ByController:
    name: str = MODE_CONTROLLER
    learns_from_packet_ins: bool = True  # packet-ins teach endpoints and IP bindings
    keeps_switch_entries: bool = False  # no learn(): nothing the switch makes is left alone
    floods_to_every_host: bool = False  # floods follow members: a host joining a tenant changes them

    def meters(self, learn_rate: int, flood_rate: int) -> tuple[f.Meter, ...]:
        return (f.Meter(t.METER_LEARN, learn_rate, max(1, learn_rate // 10)),
                f.Meter(t.METER_FLOOD, flood_rate, max(1, flood_rate // 10)))

    def local_path(self, patch: int, ck: int, tun_dst_from_src: bool) -> set[f.Flow]:
        """From br0: forward first, inside a clone so responder rewrites are undone, then let the
        learning tables see the frame as it came: their meter may drop the rest of the action
        list (notes/ovs_probe.md), and by then the frame has already gone on."""
        icmpv6 = {"eth_type": f.ETH_TYPE_IPV6, "ip_proto": f.IPPROTO_ICMPV6}
        return {
            f.Flow(t.CLASSIFY, t.PRIO_CLASSIFY, f.match(in_port=patch), self.from_br0(), cookie=ck),
            f.Flow(t.TO_LOCAL, t.PRIO_MISS, f.match(), (f.Output(patch),), cookie=ck),
            f.Flow(t.LOCAL_SPLIT, t.PRIO_EXCEPTION, f.match(eth_type=f.ETH_TYPE_ARP, arp_op=1,
                                                           eth_dst=f.MULTICAST_MAC),
                   goto=t.ARP_RESPONDER, cookie=ck),
            f.Flow(t.LOCAL_SPLIT, t.PRIO_EXCEPTION, f.match(**icmpv6, icmpv6_type=f.ICMPV6_NS,
                                                           eth_dst=f.MULTICAST_MAC),
                   goto=t.ND_RESPONDER, cookie=ck),
            # Any ARP or ND not from a known binding teaches the controller an IP.
            f.Flow(t.SRC_BINDING, t.PRIO_EXCEPTION, f.match(eth_type=f.ETH_TYPE_ARP), punt(),
                   meter=t.METER_LEARN, cookie=ck),
            f.Flow(t.SRC_BINDING, t.PRIO_EXCEPTION, f.match(**icmpv6, icmpv6_type=f.ICMPV6_NS), punt(),
                   meter=t.METER_LEARN, cookie=ck),
            f.Flow(t.SRC_BINDING, t.PRIO_EXCEPTION, f.match(**icmpv6, icmpv6_type=f.ICMPV6_NA), punt(),
                   meter=t.METER_LEARN, cookie=ck),
            f.Flow(t.SRC_BINDING, t.PRIO_MISS, f.match(), (f.Resubmit(t.SRC_MAC),), cookie=ck),
            f.Flow(t.SRC_MAC, t.PRIO_MISS, f.match(), punt(), meter=t.METER_LEARN, cookie=ck),
        }

    def from_br0(self) -> tuple[f.Action, ...]:
        """What a frame from br0 goes through (from classify, or once port security let it pass)."""
        return (f.Clone((f.Resubmit(t.LOCAL_SPLIT),)), f.Resubmit(t.SRC_BINDING))

    def tenant_extras(self, vid: int, ck: int) -> set[f.Flow]:
        return {
            # Unknown IP: flood (metered). The controller holds further requests for that IP down
            # for a while (pipeline.holddown_flow): it hears of the request once, from the
            # learning tables when they do not know the sender's binding, else from the sender's
            # own entry here (known_sender): a new VM's gratuitous ARP is punted once, not twice.
            f.Flow(t.ARP_RESPONDER, t.PRIO_UNKNOWN_IP, f.match(vlan_vid=vid), goto=t.FLOOD,
                   meter=t.METER_FLOOD, cookie=ck, role=f.ROLE_FLOOD_UNKNOWN),
            f.Flow(t.ND_RESPONDER, t.PRIO_UNKNOWN_IP, f.match(vlan_vid=vid), goto=t.FLOOD,
                   meter=t.METER_FLOOD, cookie=ck, role=f.ROLE_FLOOD_UNKNOWN),
            # Probes (sender 0.0.0.0) must reach the real owner, not get the switch's answer.
            f.Flow(t.ARP_RESPONDER, t.PRIO_EXCEPTION, f.match(vlan_vid=vid, eth_type=f.ETH_TYPE_ARP,
                                                             arp_spa="0.0.0.0"),
                   goto=t.FLOOD, meter=t.METER_FLOOD, cookie=ck),
            # Duplicate address detection (source ::) must reach the real owner, if any.
            f.Flow(t.ND_RESPONDER, t.PRIO_EXCEPTION, f.match(vlan_vid=vid, eth_type=f.ETH_TYPE_IPV6, ipv6_src="::"),
                   goto=t.FLOOD, meter=t.METER_FLOOD, cookie=ck),
        }

    def known_sender(self, vid: int, mac: str, ip: str, ck: int) -> f.Flow:
        """A request for an IP nobody announced, from a local endpoint's known binding: flooded, and
        the controller told (the learning tables, which tell it of unknown senders, stay silent)."""
        if ":" in ip:
            m = f.match(vlan_vid=vid, eth_src=mac, eth_type=f.ETH_TYPE_IPV6, ip_proto=f.IPPROTO_ICMPV6,
                        icmpv6_type=f.ICMPV6_NS, ipv6_src=ip)
            table = t.ND_RESPONDER
        else:
            m = f.match(vlan_vid=vid, eth_src=mac, eth_type=f.ETH_TYPE_ARP, arp_op=1, arp_spa=ip)
            table = t.ARP_RESPONDER
        return f.Flow(table, t.PRIO_KNOWN_SENDER, m, punt(), goto=t.FLOOD, meter=t.METER_FLOOD, cookie=ck,
                      role=f.ROLE_FLOOD_UNKNOWN)

    def responder_missed(self, table: int | None, frame: Frame) -> bool:
        """Is this packet-in a request the switch's responders could not answer? From a responder
        (a known sender's, known_sender), or from the learning tables (an unknown sender's): an ARP
        request or NS with a sender address, to a multicast address (local-split sends those to the
        responders). Whether its IP is known after all is the caller's to check."""
        if table in (t.ARP_RESPONDER, t.ND_RESPONDER):
            return True
        return table == t.SRC_BINDING and frame.ip is not None and is_multicast(frame.dst)

    def flood_peers(self, members: Iterable[str], hosts: Iterable[str]) -> Iterable[str]:
        return members  # only hosts with members: a handful, however large the cloud

    def placed(self, member_of: Iterable[int], tenants: Iterable[Tenant], host_id: str) -> set[int]:
        """The tenants a host holds: where it has members (the index's own set, not to be changed:
        this is asked for every partition recomputed)."""
        return member_of if isinstance(member_of, set) else set(member_of)


@dataclass(frozen=True)
class BySwitch:
    name: str = MODE_LEARN
    learns_from_packet_ins: bool = False
    keeps_switch_entries: bool = True  # learn()'s own entries (cookie 0 in the unicast table)
    floods_to_every_host: bool = True  # every host of the tenant holds it and gets its floods
    hard_timeout: int = 300  # the article's learn() entry lifetime

    def meters(self, learn_rate: int, flood_rate: int) -> tuple[f.Meter, ...]:
        return ()

    def local_path(self, patch: int, ck: int, tun_dst_from_src: bool) -> set[f.Flow]:
        learn = f.Learn(t.UNICAST, priority=t.PRIO_LEARNED, hard_timeout=self.hard_timeout,
                        tun_dst_from_src=tun_dst_from_src)
        return {f.Flow(t.CLASSIFY, t.PRIO_CLASSIFY, f.match(in_port=patch), goto=t.LOCAL_SPLIT, cookie=ck),
                f.Flow(t.TO_LOCAL, t.PRIO_MISS, f.match(), (learn, f.Output(patch)), cookie=ck)}

    def from_br0(self) -> tuple[f.Action, ...]:
        return (f.Resubmit(t.LOCAL_SPLIT),)

    def tenant_extras(self, vid: int, ck: int) -> set[f.Flow]:
        return set()

    def known_sender(self, vid: int, mac: str, ip: str, ck: int) -> None:
        return None  # no responders: the switch floods what it does not know

    def responder_missed(self, table: int | None, frame: Frame) -> bool:
        return False

    def flood_peers(self, members: Iterable[str], hosts: Iterable[str]) -> Iterable[str]:
        return hosts  # the article floods to every host of the tenant

    def placed(self, member_of: Iterable[int], tenants: Iterable[Tenant], host_id: str) -> set[int]:
        """Every tenant present on the host, members or not (the article's pipeline)."""
        return {tn.vni for tn in tenants if tn.present_on(host_id)}


BY_CONTROLLER, BY_SWITCH = ByController(), BySwitch()
MODES: dict[str, ByController | BySwitch] = {m.name: m for m in (BY_CONTROLLER, BY_SWITCH)}
Learning = ByController | BySwitch


def get(name: str) -> Learning:
    return by_name(MODES, name, "mac_learning")

"""The br1 pipeline, declared once: every table's id, role and where it may send packets.

Numbers follow the article (0, 1, 3, 10, 20, 21) so a dump reads like the seed; tables the
article does not have (4, 5, 18, 19, 24) exist only in controller-driven learning mode, and
table 2 only where a br0 port has a port-security rule.
OpenFlow only lets goto_table move forward, so the responders sit before FLOOD, and the port
security table hands what it lets through back to LOCAL_SPLIT by resubmit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    id: int
    name: str
    role: str
    next: tuple[int, ...] = ()  # tables this one may goto / resubmit to


CLASSIFY = 0  # entry: patch port -> LOCAL_SPLIT, tunnel ports -> TUNNEL_IN, else drop
LOCAL_SPLIT = 1  # leaving the host: unicast -> UNICAST, broadcast/multicast -> FLOOD
PORT_SECURITY = 2  # from br0, in a VLAN with port rules: allowed (MAC, IP) sources on, the rest dropped
TUNNEL_IN = 3  # arriving: tunnel ID -> this host's local VLAN of the tenant
SRC_BINDING = 4  # controller mode, copy of local traffic: unknown ARP/ND bindings -> controller
SRC_MAC = 5  # controller mode, copy of local traffic: unknown source MAC -> controller; ages MACs
TO_LOCAL = 10  # arriving, tagged: (learn mode: learn()) then out to br0
UNICAST = 20  # leaving: known (VLAN, MAC) -> strip VLAN, set tunnel ID, out to its host; miss -> FLOOD
FLOOD = 21  # leaving: strip VLAN, set tunnel ID, copy to the tenant's hosts (one group per tenant)
ARP_RESPONDER = 18  # controller mode: answer ARP for known IPs in the switch; miss -> metered FLOOD
ND_RESPONDER = 19  # controller mode: answer IPv6 NS for known IPs in the switch; miss -> metered FLOOD
ND_REPLY = 24  # controller mode: finish the NA (target link-layer option) and send it back

PIPELINE: tuple[Table, ...] = (
    Table(CLASSIFY, "classify", "patch port -> local path (and a copy to learning), tunnels -> tunnel path",
          (LOCAL_SPLIT, PORT_SECURITY, TUNNEL_IN, SRC_BINDING)),
    Table(PORT_SECURITY, "port-security", "from br0 in a VLAN with port rules: allowed sources go on as "
          "classify sends them, others are dropped", (LOCAL_SPLIT, SRC_BINDING)),
    Table(LOCAL_SPLIT, "local-split", "leaving: unicast vs broadcast/multicast (ARP/NS to responders)",
          (UNICAST, FLOOD, ARP_RESPONDER, ND_RESPONDER)),
    Table(TUNNEL_IN, "tunnel-in", "arriving: tunnel ID -> local VLAN of the tenant; unknown ID dropped",
          (TO_LOCAL,)),
    Table(SRC_BINDING, "src-binding", "controller mode: ARP/ND from an unknown (MAC, IP) -> controller",
          (SRC_MAC,)),
    Table(SRC_MAC, "src-mac", "controller mode: unknown (VLAN, source MAC) -> controller; idle aging",
          ()),
    Table(TO_LOCAL, "to-local", "arriving: learn() in learn mode, then output to br0", ()),
    Table(UNICAST, "unicast", "known (VLAN, MAC) -> tunnel to its host; local MAC -> drop; miss -> flood",
          (FLOOD,)),
    Table(FLOOD, "flood", "tenant VLAN -> tunnel ID -> group of hosts with members", ()),
    Table(ARP_RESPONDER, "arp-responder", "ARP request for a known IP -> reply built in the switch",
          (FLOOD,)),
    Table(ND_RESPONDER, "nd-responder", "IPv6 NS for a known IP -> NA built in the switch", (FLOOD, ND_REPLY)),
    Table(ND_REPLY, "nd-reply", "the NA's target link-layer address option, then back out", ()),
)

BY_ID = {t.id: t for t in PIPELINE}

# Priorities, by what a flow is for (flows.py's roles say what its packets count as).
PRIO_MISS = 0  # a table's default: on to the next table, or drop
PRIO_LEARNED = 1  # entries the switch's own learn() makes (learn mode)
PRIO_UNKNOWN_IP = 1  # a responder's miss: flood through the meter (the learning tables tell the controller)
PRIO_KNOWN_SENDER = 2  # a responder's miss for a request from a known binding: flood, and tell the controller
PRIO_HOLDDOWN = 5  # a request for an unanswered IP, dropped for a while; a learned answer wins
PRIO_ENTRY = 10  # the entries of tenants and endpoints: tunnel-in, flood, unicast, answers, sources
PRIO_LEARNED_SOURCE = 15  # a (host, tenant) at its learning cap floods only for the sources it learned
PRIO_EXCEPTION = 20  # what must not take the common path: ARP/NS to the responders, GARPs, probes, DAD
PRIO_BINDING = 30  # a known (MAC, IP) binding of a local endpoint: nothing to learn
PRIO_CLASSIFY = 100  # where a frame came from: br0, or a tunnel
PRIO_GUARDED = 110  # from br0 in a VLAN with port rules: through the port security table first

# Port security (table PORT_SECURITY, controller/pipeline/port_security.py), first match wins:
PRIO_GUARD_ND_OK = 40  # a neighbour advertisement for an IP the MAC may use: on
PRIO_GUARD_ND_DROP = 35  # any other advertisement from that MAC: dropped
PRIO_GUARD_IP_OK = 30  # ARP, IPv4 or IPv6 from an allowed (MAC, IP): on
PRIO_GUARD_IP_DROP = 20  # ARP, IPv4 or IPv6 from that MAC with another IP: dropped
PRIO_GUARD_MAC_OK = 10  # anything else from an allowed MAC: on
PRIO_SPOOFED = 1  # every other source in the VLAN: dropped

# Meters: rate limits for what must not become a storm.
METER_LEARN = 1  # packet-ins that learn MACs and IP bindings
METER_FLOOD = 2  # floods of ARP/NS for unknown IPs

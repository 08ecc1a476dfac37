"""The core's counters that others name: what each counted role's packets count as (read from the
switches as cookie-masked aggregates), and the prefixes under which garbage on the control
channels is counted by kind (the southbound counts, the metrics export them labelled)."""

from __future__ import annotations

from collections import Counter

from controller.model import flows as f

# What a role's packets count as (switch-side counters, read as cookie-masked aggregates).
ROLE_COUNTERS = {
    f.ROLE_ARP_PROXY: "arp_proxied", f.ROLE_ARP_LOCAL: "arp_local",
    f.ROLE_ND_PROXY: "nd_proxied", f.ROLE_ND_LOCAL: "nd_local",
    f.ROLE_FLOOD_UNKNOWN: "floods_unknown_ip", f.ROLE_FLOOD: "floods_sent",
    f.ROLE_UNICAST_KNOWN: "unicast_to_known", f.ROLE_SPOOFED: "port_security_dropped",
}
# Requests the article's pipeline would have flooded to every host, handled on the spot instead.
SUPPRESSED = ("arp_proxied", "arp_local", "nd_proxied", "nd_local")
OPENFLOW_MALFORMED = "openflow_malformed_"  # + kind: counted by controller/southbound/ofguard.py
OVSDB_MALFORMED = "ovsdb_malformed_"  # + kind: counted by controller/southbound/ovsdb_wire.py


def fold_role(counters: Counter[str], last: dict[tuple[int, int], int], dpid: int, role: int, packets: int) -> None:
    """Fold one switch's packet count for one role into the counters; `last`: (dpid, role) -> the
    count read before.

    Counters are monotonic: only growth is added. When flows of the role go away their packets
    leave the aggregate; that drop is not counted as traffic.
    """
    name = ROLE_COUNTERS.get(role)
    if name is None:
        return
    prev = last.get((dpid, role))
    last[(dpid, role)] = packets
    grown = packets - prev if prev is not None and packets > prev else 0
    if grown:
        counters[name] += grown
        if name in SUPPRESSED:
            counters["floods_suppressed"] += grown

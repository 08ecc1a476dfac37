"""The core's counters that others name: what each counted role's packets count as (read from the
switches as cookie-masked aggregates), and the prefixes under which garbage on the control
channels is counted by kind (the southbound counts, the metrics export them labelled)."""

from __future__ import annotations

from controller.model import flows as f

# What a role's packets count as (switch-side counters, read as cookie-masked aggregates).
ROLE_COUNTERS = {
    f.ROLE_ARP_PROXY: "arp_proxied", f.ROLE_ARP_LOCAL: "arp_local",
    f.ROLE_ND_PROXY: "nd_proxied", f.ROLE_ND_LOCAL: "nd_local",
    f.ROLE_FLOOD_UNKNOWN: "floods_unknown_ip", f.ROLE_FLOOD: "floods_sent",
    f.ROLE_UNICAST_KNOWN: "unicast_to_known",
}
# Requests the article's pipeline would have flooded to every host, handled on the spot instead.
SUPPRESSED = ("arp_proxied", "arp_local", "nd_proxied", "nd_local")
OPENFLOW_MALFORMED = "openflow_malformed_"  # + kind: counted by controller/southbound/ofguard.py
OVSDB_MALFORMED = "ovsdb_malformed_"  # + kind: counted by controller/southbound/ovsdb_wire.py

"""What overlayctl shows of each answer in its table format: the columns of each kind of
document (controller/cli/fmt.py draws them), and a host's own page."""

from __future__ import annotations

from controller.cli import fmt


def _hosts_of(t: dict) -> str:
    return "all" if t["hosts"] is None else ",".join(t["hosts"]) or "(none)"


def _overrides(t: dict) -> str | None:
    return ",".join(f"{h}={v}" for h, v in sorted(t["vlans"].items())) or None


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


TENANT_COLUMNS = [("name", lambda t: t["name"]), ("vni", lambda t: t["vni"]), ("vlan", lambda t: t["vlan"]),
                  ("hosts", _hosts_of), ("vlan overrides", _overrides)]
HOST_COLUMNS = [
    ("id", lambda h: h["id"] or f"({h.get('peer')})"), ("overlay ip", lambda h: h["overlay_ip"]),
    ("ovsdb", lambda h: "up" if h["connected"]["ovsdb"] else "down"),
    ("openflow", lambda h: "up" if h["connected"]["openflow"] else "down"),
    ("tunnels", lambda h: len(h["tunnels"])),
    ("tenants", lambda h: ",".join(f"{t['name']}:{t['vlan']}" for t in h["tenants"]) or None),
    ("refused claims", lambda h: sum(c["count"] for c in h.get("refused_claims", ())) or None),
    ("admitted", lambda h: _yes(h.get("admitted", True))),
    ("joined", lambda h: "yes" if h.get("joined", True) else f"no: {h.get('reason')}"),
]
ADMISSION_COLUMNS = [("id", lambda a: a["id"]), ("admitted", lambda a: _yes(a["admitted"])),
                     ("by", lambda a: a["by"]), ("reason", lambda a: a["reason"])]
PORT_COLUMNS = [("port", lambda r: r["port"]), ("macs", lambda r: ",".join(r["macs"])),
                ("ips", lambda r: ",".join(r["ips"]) or "any")]
VLAN_COLUMNS = [("vlan", lambda r: r["vlan"]), ("tenant", lambda r: r["tenant"]), ("vni", lambda r: r["vni"]),
                ("members", lambda r: _yes(r["members"]))]
ENDPOINT_COLUMNS = [("mac", lambda e: e["mac"]), ("ips", lambda e: ",".join(e["ips"]) or None),
                    ("host", lambda e: e["host"]), ("vlan", lambda e: e["vlan"]),
                    ("idle", lambda e: f"{e['idle_s']:.0f}s")]
COUNTER_COLUMNS = [("counter", lambda r: r["k"]), ("value", lambda r: r["v"])]
TOPOLOGY_COLUMNS = [("tenant", lambda r: r["tenant"]), ("vni", lambda r: r["vni"]), ("host", lambda r: r["host"]),
                    ("vlan", lambda r: r["vlan"]), ("mac", lambda r: r["mac"]), ("ips", lambda r: r["ips"])]
TRACE_COLUMNS = [("host", lambda r: r["host"]), ("from", lambda r: r["from"]), ("tables", lambda r: r["tables"]),
                 ("outputs", lambda r: r["outputs"])]
HEALTH_COLUMNS = [("ready", lambda d: d.get("ready")), ("reason", lambda d: d.get("reason")),
                  ("tenants", lambda d: d.get("tenants")), ("hosts", lambda d: d.get("hosts"))]
DELETED_COLUMNS = [("deleted", lambda d: d["deleted"])]


def show_host(h: dict) -> str:
    head = fmt.table([h], HOST_COLUMNS[:4])
    tunnels = fmt.table(h["tunnels"], [("tunnel", lambda p: p["name"]), ("type", lambda p: p["type"]),
                                       ("remote ip", lambda p: p["remote_ip"]), ("peer", lambda p: p["peer"]),
                                       ("ofport", lambda p: p["ofport"]),
                                       ("managed", lambda p: "yes" if p["managed"] else "adopted")])
    tenants = fmt.table(h["tenants"], [("tenant", lambda t: t["name"]), ("vni", lambda t: t["vni"]),
                                       ("vlan", lambda t: t["vlan"]), ("members", lambda t: _yes(t["members"]))])
    return f"{head}\ndatapath {h['datapath_id'] or '-'}\n\n{tunnels}\n\n{tenants}"


PLAN_COLUMNS = [("change", lambda r: r["change"]), ("what", lambda r: r["what"]), ("name", lambda r: r["name"]),
                ("detail", lambda r: r["detail"])]
EXPORT_COLUMNS = [("name", lambda t: t["name"]), ("vni", lambda t: t["vni"]), ("vlan", lambda t: t["vlan"]),
                  ("hosts", lambda t: ",".join(t["hosts"]) if "hosts" in t else "all"),
                  ("vlan overrides", lambda t: ",".join(f"{h}={v}" for h, v in t.get("vlans", {}).items()) or None)]
LAG_COLUMNS = [("host", lambda r: r["host"]), ("revision", lambda r: r["revision"]), ("reason", lambda r: r["reason"])]
EVENT_COLUMNS = [("id", lambda e: e["id"]), ("kind", lambda e: e["kind"])]

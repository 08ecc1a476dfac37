"""overlayctl's output: tables, values, JSON, YAML, the topology tree and the trace, from API JSON.

A command's result is rows (dicts from the API) and columns ((header, row -> value)); every
format is drawn from those, except that JSON and YAML without -c print the API's document as is
and the table format of a few commands (hosts show, topology, trace) is their own text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml  # PyYAML: already installed with os-ken (oslo.config needs it)

Column = tuple[str, Callable[[dict], Any]]
FORMATS = ("table", "json", "yaml", "value")


class ColumnError(ValueError):
    """-c named a column the command does not have."""


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def table(rows: list[dict], columns: list[Column]) -> str:
    """A plain text table; a column is (header, row -> value)."""
    cells = [[h.upper() for h, _ in columns]]
    cells += [[_cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def values(rows: list[dict], columns: list[Column]) -> str:
    """-f value: the cells only, space-separated, one row a line (for shell loops)."""
    return "\n".join(" ".join(_cell(get(row)) for _, get in columns) for row in rows)


def column_key(name: str) -> str:
    """'Overlay IP', 'overlay_ip' and 'overlay-ip' all name the same column."""
    return name.lower().replace("_", " ").replace("-", " ").strip()


def pick(columns: list[Column], wanted: list[str]) -> list[Column]:
    """The columns -c asked for, in the order asked; ValueError names the ones there are."""
    by_key = {column_key(h): (h, get) for h, get in columns}
    unknown = [w for w in wanted if column_key(w) not in by_key]
    if unknown:
        raise ColumnError(f"no column {', '.join(map(repr, unknown))}; columns: "
                         + ", ".join(h.replace(" ", "_") for h, _ in columns))
    return [by_key[column_key(w)] for w in wanted]


def as_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")


def render(fmt: str, doc: Any, rows: list[dict], columns: list[Column], text: str | None,
           chosen: list[str]) -> str:
    """The output of one command in format fmt (-c chosen columns, if any)."""
    cols = pick(columns, chosen) if chosen else columns
    if fmt in ("json", "yaml"):
        if chosen:  # only those columns, as the table shows them
            doc = [{h.replace(" ", "_"): get(row) for h, get in cols} for row in rows]
        return json.dumps(doc, indent=2) if fmt == "json" else as_yaml(doc)
    if fmt == "value":
        return values(rows, cols)
    if text is not None and not chosen:
        return text
    return table(rows, cols)


# ---- topology: a tree like `ovn-nbctl show` ----------------------------------------------------

def _up(flag: bool) -> str:
    return "up" if flag else "down"


def topology_rows(hosts: list[dict], tenants: list[dict], endpoints: dict[str, list[dict]]) -> list[dict]:
    """One row per (tenant, host it is on, endpoint or none there)."""
    rows = []
    for tn in tenants:
        for h in hosts:
            here = next((x for x in h["tenants"] if x["name"] == tn["name"]), None)
            if here is None:
                continue
            eps = [e for e in endpoints.get(tn["name"], []) if e["host"] == h["id"]] or [None]
            for ep in eps:
                rows.append({"tenant": tn["name"], "vni": tn["vni"], "host": h["id"], "vlan": here["vlan"],
                             "mac": ep and ep["mac"], "ips": ep and ",".join(ep["ips"]) or None})
    return rows


def topology_text(hosts: list[dict], tenants: list[dict], endpoints: dict[str, list[dict]]) -> str:
    lines = []
    for h in hosts:
        c = h["connected"]
        lines.append(f"host {h['id']} ({h['overlay_ip'] or 'no overlay ip'}) ovsdb {_up(c['ovsdb'])}, "
                     f"openflow {_up(c['openflow'])}")
        for p in h["tunnels"]:
            kind = "" if p["managed"] else ", adopted"
            port = f"ofport {p['ofport']}" if p["ofport"] else "no ofport yet"
            lines.append(f"    tunnel {p['name']} ({p['type']}{kind}) -> {p['peer'] or '?'} ({p['remote_ip']}), {port}")
    for tn in tenants:
        where = "every host" if tn["hosts"] is None else ", ".join(tn["hosts"]) or "no host"
        lines.append(f"tenant {tn['name']} (VNI {tn['vni']}, VLAN {tn['vlan']}, on {where})")
        eps = endpoints.get(tn["name"], [])
        for h in hosts:
            here = next((x for x in h["tenants"] if x["name"] == tn["name"]), None)
            if here is None:
                continue
            members = "" if here["members"] else ", no members"
            lines.append(f"    host {h['id']} (VLAN {here['vlan']}{members})")
            for e in (e for e in eps if e["host"] == h["id"]):
                ips = " ".join(e["ips"]) or "(no IP seen)"
                lines.append(f"        endpoint {e['mac']} {ips} (idle {e['idle_s']:.0f}s)")
        for e in (e for e in eps if e["host"] not in {h["id"] for h in hosts}):
            lines.append(f"    endpoint {e['mac']} behind unknown host {e['host']}")
    return "\n".join(lines) or "(no hosts, no tenants)"


# ---- the packet trace, in the style of ovn-trace -------------------------------------------------

PACKET_ORDER = ("in_port", "tunnel_id", "vlan_vid", "eth_src", "eth_dst", "eth_type", "arp_op", "arp_sha",
                "arp_spa", "arp_tha", "arp_tpa", "ipv4_src", "ipv4_dst")
HEX = ("tunnel_id", "vlan_vid", "eth_type")


def packet_text(pkt: dict) -> str:
    return ",".join(f"{k}={hex(pkt[k]) if k in HEX else pkt[k]}" for k in PACKET_ORDER if k in pkt)


def _to_text(to: dict, pkt: dict) -> str:
    if to["kind"] == "tunnel":
        return (f"tunnel {to['name']} ({to['type']}) to {to['peer'] or '?'} ({to['remote_ip']}), "
                f"tunnel_id={pkt.get('tunnel_id')}")
    if to["kind"] == "br0":
        vlan = pkt.get("vlan_vid", 0) & 0xFFF
        return f"br0 (patch){f', VLAN {vlan}' if vlan else ''}"
    return to["name"]


def _from_text(came: dict) -> str:
    if came["kind"] == "br0":
        return f"from br0 (patch), VLAN {came['vlan']}"
    return f"from tunnel {came.get('port', '?')} (host {came['host']}), tunnel_id={came.get('tunnel_id')}"


def split_actions(text: str) -> list[str]:
    """'a,clone(b,c),d' -> ['a', 'clone(b,c)', 'd']: one action a line, as ofproto/trace prints them."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    return [*out, text[start:]]


def trace_text(tr: dict) -> str:
    src, dst, tn = tr["src"], tr["dst"], tr["tenant"]
    target = f"{dst['mac']} on {dst['host']}" if dst else tr["packet"]["eth_dst"]
    if tr["kind"] == "arp":
        target = f"who has {tr['packet']['arp_tpa']} (broadcast ARP)"
    out = [f"# tenant {tn['name']} (VNI {tn['vni']}), {tr['kind']}: {src['mac']} on {src['host']} -> {target}",
           f"# {packet_text(tr['packet'])}"]
    for hop in tr["hops"]:
        head = f"{hop['host']}: br1, {_from_text(hop['from'])}"
        out += ["", head, "-" * len(head)]
        if hop.get("note"):
            out.append(f"    ({hop['note']})")
        for s in hop["steps"]:
            pad = "    " * s["depth"]
            if s["kind"] == "flow":
                out.append(f"{pad}{s['table']:2d}. {s['table_name']}: {s['match']}, priority {s['priority']}, "
                           f"cookie {s['cookie']}")
                out += [f"{pad}    {action}" for action in split_actions(s["actions"])]
            elif s["kind"] == "miss":
                out.append(f"{pad}{s['table']:2d}. {s['table_name']}: no match: drop")
            elif s["kind"] == "output":
                out.append(f"{pad}-> output:{s['port']}: {_to_text(s['to'], s['packet'])}")
            elif s["kind"] == "controller":
                out.append(f"{pad}-> copy to the controller (meter {s['meter']})")
            elif s["kind"] == "group":
                out.append(f"{pad}-> group {s['group']}: {s['buckets']} bucket(s)")
    out += ["", f"Result: {tr['summary']['verdict']}"]
    return "\n".join(out)


def trace_rows(tr: dict) -> list[dict]:
    """-f value / -c for a trace: one row per hop."""
    rows = []
    for hop in tr["hops"]:
        outs = [s for s in hop["steps"] if s["kind"] == "output"]
        rows.append({"host": hop["host"], "from": hop["from"].get("host") or "br0",
                     "tables": ",".join(str(s["table"]) for s in hop["steps"] if s["kind"] == "flow"),
                     "outputs": ",".join(s["to"].get("peer") or s["to"]["kind"] for s in outs) or None})
    return rows

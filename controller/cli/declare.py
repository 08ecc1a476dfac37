"""overlayctl apply / diff / export / status, and --wait (docs/user/gitops.md).

apply and diff read the overlay file (controller/cli/overlay_file.py), check it here (a refused
field is named with its line, exit 2, nothing sent) and send it whole: POST /v1/apply, one
request, all or nothing (diff: dry_run). A field the API refuses is named with its line too.
--wait asks GET /v1/status?revision=N&wait=S for the revision the write answered with: it
returns as soon as every switch holds it (barrier-confirmed), or names the hosts that lag.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any

from controller.cli.client import ApiError, Client
from controller.cli.overlay_file import FileError, OverlayFile, load
from controller.model.revisions import REVISION_HEADER

# Exit codes (docs/user/overlayctl.md): one table for every command.
EXIT_OK = 0
EXIT_API = 1  # the API refused (diff: something would change)
EXIT_USAGE = 2  # usage error, or a file that is not valid (the line and field named)
EXIT_UNREACHABLE = 3  # the API cannot be reached
EXIT_NOT_LIVE = 4  # --wait or status: not every switch holds the revision (the change is committed)
EXIT_DIFF_REFUSED = 5  # diff only: the API refused the file (so that 1 means "would change" alone)
DEFAULT_WAIT_S = 60.0


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API) -> None:
        super().__init__(message)
        self.code = code


def _file(args: argparse.Namespace) -> OverlayFile:
    try:
        f = load(args.filename, sys.stdin)
        f.check()
    except FileError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    return f


def _send(client: Client, f: OverlayFile, prune: bool, dry_run: bool, refused: int) -> dict:
    query = urllib.parse.urlencode({"prune": str(prune).lower(), "dry_run": str(dry_run).lower()})
    try:
        return client.request("POST", f"/v1/apply?{query}", f.doc)
    except ApiError as e:
        body = e.body if isinstance(e.body, dict) else {}
        path = tuple(body.get("path") or ())
        if path:  # the API named the field: name its line
            raise CliError(f"{f.error(e.message, path)} (HTTP {e.status})", refused) from None
        raise CliError(f"HTTP {e.status}: {e.message}", refused) from None


def apply(client: Client, args: argparse.Namespace) -> dict:
    return _send(client, _file(args), args.prune, False, EXIT_API)


def diff(client: Client, args: argparse.Namespace) -> dict:
    return _send(client, _file(args), args.prune, True, EXIT_DIFF_REFUSED)


def diff_exit(doc: dict) -> int:
    return EXIT_API if doc.get("changes") else EXIT_OK


# ---- the text of a plan ----------------------------------------------------------------------

def _spec(t: dict) -> str:
    where = "every host" if t["hosts"] is None else ("hosts " + ",".join(t["hosts"]) if t["hosts"] else "no host")
    vlans = "".join(f", VLAN {v} on {h}" for h, v in sorted(t["vlans"].items()))
    return f"VNI {t['vni']}, VLAN {t['vlan']}{vlans}, on {where}"


def _field(t: dict, name: str) -> str:
    value = t[name]
    if name == "hosts":
        return "every host" if value is None else ",".join(value) or "none"
    if name == "vlans":
        return ",".join(f"{h}={v}" for h, v in sorted(value.items())) or "none"
    return str(value)


def _admitted(admitted: bool) -> str:
    return "admitted" if admitted else "revoked"


def _allows(rule: dict) -> str:
    ips = ", ".join(rule["ips"]) or "any IP"
    return f"MACs {', '.join(rule['macs'])}; {ips}"


def plan_rows(doc: dict) -> list[dict]:
    """One row per tenant, host decision or port rule the plan creates, changes or deletes:
    {change, what, name, detail}."""
    rows = [{"change": "create", "what": "tenant", "name": t["name"], "detail": _spec(t)} for t in doc["create"]]
    for c in doc["change"]:
        fields = "; ".join(f"{k}: {_field(c['from'], k)} -> {_field(c['to'], k)}" for k in c["fields"])
        rows.append({"change": "change", "what": "tenant", "name": c["name"], "detail": fields})
    rows += [{"change": "delete", "what": "tenant", "name": t["name"], "detail": _spec(t)} for t in doc["delete"]]
    hosts, ports = doc.get("hosts") or {}, doc.get("ports") or {}  # an older controller's answer has neither
    for change in ("create", "change", "delete"):
        for h in hosts.get(change, ()):
            detail = (f"{_admitted(h['from'])} -> {_admitted(h['to'])}" if change == "change" else
                      _admitted(h["admitted"]) + (" (the operator's decision removed)" if change == "delete" else ""))
            rows.append({"change": change, "what": "host", "name": h["host"], "detail": detail})
    for change in ("create", "change", "delete"):
        for p in ports.get(change, ()):
            detail = f"{_allows(p['from'])} -> {_allows(p['to'])}" if change == "change" else _allows(p)
            rows.append({"change": change, "what": "port", "name": f"{p['host']}/{p['port']}", "detail": detail})
    return rows


DIFF_MARK = {"create": "+", "change": "~", "delete": "-"}
APPLIED = {"create": "created", "change": "changed", "delete": "deleted"}


SECTIONS = (("tenant", "tenant(s)", "--prune deletes them"), ("hosts", "host decision(s)", "--prune removes them"),
            ("ports", "port rule(s)", "--prune deletes them"))


def _tail(doc: dict) -> list[str]:
    out = []
    for key, what, prune in SECTIONS:
        section = doc if key == "tenant" else doc.get(key) or {"unchanged": 0, "kept": []}
        if section["unchanged"]:
            out.append(f"{section['unchanged']} {what} as in the file")
        if section["kept"]:
            out.append(f"{what} not in the file, kept: {', '.join(section['kept'])} ({prune})")
    return out


def _named(r: dict) -> str:
    return r["name"] if r["what"] == "tenant" else f"{r['what']} {r['name']}"


def diff_text(doc: dict) -> str:
    lines = [f"{DIFF_MARK[r['change']]} {_named(r)}: {r['detail']}" for r in plan_rows(doc)] or ["no changes"]
    return "\n".join(lines + [f"({x})" for x in _tail(doc)])


def apply_text(doc: dict) -> str:
    lines = [f"{r['what']} {r['name']} {APPLIED[r['change']]}: {r['detail']}" for r in plan_rows(doc)]
    if not doc["changes"]:
        lines.append("nothing to change")
    lines += _tail(doc)
    lines.append(f"revision {doc['revision']}")
    return "\n".join(lines)


def export_text(doc: Any) -> str:
    from controller.cli.fmt import as_yaml
    return as_yaml(doc)


# ---- is it live? -------------------------------------------------------------------------

def status(client: Client, args: argparse.Namespace) -> dict:
    query: dict[str, Any] = {}
    if args.revision is not None:
        query["revision"] = args.revision
    wait = getattr(args, "timeout", None) if args.wait else None
    if args.wait:
        query["wait"] = wait if wait is not None else DEFAULT_WAIT_S
    path = "/v1/status" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    return client.request("GET", path, timeout=float(query.get("wait", 0)) + client.timeout)


def status_exit(doc: dict) -> int:
    return EXIT_OK if doc.get("live") else EXIT_NOT_LIVE


def status_text(doc: dict) -> str:
    if doc["live"]:
        return f"revision {doc['asked']} is live: every host's switch holds it ({doc['holding']} of {doc['hosts']})"
    lines = [f"revision {doc['asked']} is not live: {doc['reason']}"]
    lines += [f"  {x['host']}: {x['reason']}" for x in doc["lagging"]]
    return "\n".join(lines)


def wait_live(client: Client, limit: float | None) -> dict:
    """After a write: until every switch holds the revision it answered with (or the limit)."""
    revision = client.headers.get(REVISION_HEADER)
    if revision is None or not revision.isdigit():
        raise CliError("the API did not say which revision the write made (an older controller?)")
    wait = DEFAULT_WAIT_S if limit is None else limit
    return client.request("GET", f"/v1/status?revision={revision}&wait={wait:g}", timeout=wait + client.timeout)

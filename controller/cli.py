"""overlayctl: the operator's command-line client for the REST API (stdlib only).

    overlayctl tenants list
    overlayctl tenants create blue --vni 5001 --vlan 10 [--hosts host1,host2] [--vlan-on host7=300]
    overlayctl tenants update blue --vlan 11           (only the given fields change)
    overlayctl tenants delete blue
    overlayctl hosts list | hosts show ID | hosts vlans ID
    overlayctl endpoints blue
    overlayctl counters | health

Tables for people, --json for scripts. --url (or $OVERLAY_URL) says where the API is; the token
comes from --token-file or $OVERLAY_TOKEN. On an API error it prints the API's message and exits 1
(2 for usage errors, 3 when the API cannot be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from controller.version import __version__

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API) -> None:
        super().__init__(message)
        self.code = code


class Client:
    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise CliError(f"HTTP {e.code}: {_error_text(e.read())}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise CliError(f"cannot reach the API at {self.url}: {reason}", EXIT_UNREACHABLE) from None
        return json.loads(raw) if raw else None


def _error_text(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        return str(doc["error"] if "error" in doc else doc["reason"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace").strip() or "(no message)"


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


# ---- output --------------------------------------------------------------------------------

def table(rows: list[dict], columns: list[tuple[str, Callable[[dict], Any]]]) -> str:
    """A plain text table; a column is (header, row -> value)."""
    cells = [[h.upper() for h, _ in columns]]
    cells += [["-" if (v := get(row)) is None else str(v) for _, get in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _hosts_of(t: dict) -> str:
    return "all" if t["hosts"] is None else ",".join(t["hosts"]) or "(none)"


def _overrides(t: dict) -> str:
    return ",".join(f"{h}={v}" for h, v in sorted(t["vlans"].items())) or None


TENANT_COLUMNS = [("name", lambda t: t["name"]), ("vni", lambda t: t["vni"]), ("vlan", lambda t: t["vlan"]),
                  ("hosts", _hosts_of), ("vlan overrides", _overrides)]
HOST_COLUMNS = [
    ("id", lambda h: h["id"] or f"({h.get('peer')})"), ("overlay ip", lambda h: h["overlay_ip"]),
    ("ovsdb", lambda h: "up" if h["connected"]["ovsdb"] else "down"),
    ("openflow", lambda h: "up" if h["connected"]["openflow"] else "down"),
    ("tunnels", lambda h: len(h["tunnels"])),
    ("tenants", lambda h: ",".join(f"{t['name']}:{t['vlan']}" for t in h["tenants"]) or None),
    ("joined", lambda h: "yes" if h.get("joined", True) else f"no: {h.get('reason')}"),
]
VLAN_COLUMNS = [("vlan", lambda r: r["vlan"]), ("tenant", lambda r: r["tenant"]), ("vni", lambda r: r["vni"]),
                ("members", lambda r: "yes" if r["members"] else "no")]
ENDPOINT_COLUMNS = [("mac", lambda e: e["mac"]), ("ips", lambda e: ",".join(e["ips"]) or None),
                    ("host", lambda e: e["host"]), ("vlan", lambda e: e["vlan"]),
                    ("idle", lambda e: f"{e['idle_s']:.0f}s")]


def _show_host(h: dict) -> str:
    head = table([h], HOST_COLUMNS[:4])
    tunnels = table(h["tunnels"], [("tunnel", lambda p: p["name"]), ("type", lambda p: p["type"]),
                                   ("remote ip", lambda p: p["remote_ip"]), ("peer", lambda p: p["peer"]),
                                   ("ofport", lambda p: p["ofport"]),
                                   ("managed", lambda p: "yes" if p["managed"] else "adopted")])
    tenants = table(h["tenants"], [("tenant", lambda t: t["name"]), ("vni", lambda t: t["vni"]),
                                   ("vlan", lambda t: t["vlan"]),
                                   ("members", lambda t: "yes" if t["members"] else "no")])
    return f"{head}\ndatapath {h['datapath_id'] or '-'}\n\n{tunnels}\n\n{tenants}"


# ---- commands ------------------------------------------------------------------------------

def _vlan_overrides(items: list[str]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for item in items:
        host, sep, vlan = item.partition("=")
        if not sep or not host:
            raise CliError(f"--vlan-on wants HOST=VLAN, not {item!r}", EXIT_USAGE)
        if vlan == "":
            out[host] = None  # HOST= drops the override (update only)
            continue
        try:
            out[host] = int(vlan)
        except ValueError:
            raise CliError(f"--vlan-on {item!r}: the VLAN must be a number", EXIT_USAGE) from None
    return out


def _host_list(text: str) -> list[str]:
    return [h for h in (x.strip() for x in text.split(",")) if h]


def run(args: argparse.Namespace, client: Client) -> tuple[Any, str | None]:
    """Do the command: (JSON result, text for people or None for 'print nothing')."""
    what, verb = args.what, getattr(args, "verb", None)
    if what == "tenants":
        if verb == "list":
            doc = client.request("GET", "/v1/tenants")
            return doc, table(doc, TENANT_COLUMNS)
        if verb == "show":
            doc = client.request("GET", f"/v1/tenants/{_quote(args.name)}")
            return doc, table([doc], TENANT_COLUMNS)
        if verb == "create":
            body: dict[str, Any] = {"name": args.name, "vni": args.vni, "vlan": args.vlan}
            if args.hosts is not None:
                body["hosts"] = _host_list(args.hosts)
            overrides = _vlan_overrides(args.vlan_on)
            if any(v is None for v in overrides.values()):
                raise CliError("--vlan-on HOST= (drop an override) is for 'tenants update'", EXIT_USAGE)
            if overrides:
                body["vlans"] = overrides
            doc = client.request("POST", "/v1/tenants", body)
            return doc, table([doc], TENANT_COLUMNS)
        if verb == "update":
            patch: dict[str, Any] = {}
            if args.vni is not None:
                patch["vni"] = args.vni
            if args.vlan is not None:
                patch["vlan"] = args.vlan
            if args.all_hosts:
                patch["hosts"] = None
            elif args.hosts is not None:
                patch["hosts"] = _host_list(args.hosts)
            if args.vlan_on:
                patch["vlans"] = _vlan_overrides(args.vlan_on)
            if not patch:
                raise CliError("nothing to change: give --vni, --vlan, --hosts, --all-hosts or --vlan-on",
                               EXIT_USAGE)
            doc = client.request("PATCH", f"/v1/tenants/{_quote(args.name)}", patch,
                                 content_type="application/merge-patch+json")
            return doc, table([doc], TENANT_COLUMNS)
        if verb == "delete":
            client.request("DELETE", f"/v1/tenants/{_quote(args.name)}")
            return {"deleted": args.name}, f"tenant {args.name} deleted"
    if what == "hosts":
        if verb == "list":
            doc = client.request("GET", "/v1/hosts")
            return doc, table(doc, HOST_COLUMNS)
        if verb == "show":
            doc = client.request("GET", f"/v1/hosts/{_quote(args.id)}")
            return doc, _show_host(doc)
        if verb == "vlans":
            doc = client.request("GET", f"/v1/hosts/{_quote(args.id)}/vlans")
            return doc, table(doc, VLAN_COLUMNS)
    if what == "endpoints":
        doc = client.request("GET", f"/v1/tenants/{_quote(args.tenant)}/endpoints")
        return doc, table(doc, ENDPOINT_COLUMNS)
    if what == "counters":
        doc = client.request("GET", "/v1/counters")
        return doc, table([{"k": k, "v": v} for k, v in doc.items()], [("counter", lambda r: r["k"]),
                                                                         ("value", lambda r: r["v"])])
    if what == "health":
        doc = client.request("GET", "/v1/health")
        return doc, "ready" if doc.get("ready") else f"not ready: {doc.get('reason')}"
    raise CliError(f"unknown command {what} {verb or ''}".strip(), EXIT_USAGE)


def parser() -> argparse.ArgumentParser:
    # The common options are accepted before and after the command (`overlayctl tenants list --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help=f"API address (default: $OVERLAY_URL or {DEFAULT_URL})")
    common.add_argument("--token-file", default=argparse.SUPPRESS,
                        help="file holding the bearer token (default: $OVERLAY_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the API's JSON, for scripts")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds (default 10)")

    p = argparse.ArgumentParser(prog="overlayctl", description="Operate the sdn-overlay controller.",
                                parents=[common])
    p.add_argument("--version", action="version", version=f"overlayctl {__version__}")
    sub = p.add_subparsers(dest="what", required=True, metavar="COMMAND")

    tenants = sub.add_parser("tenants", help="list, show, create, update, delete tenants", parents=[common])
    tv = tenants.add_subparsers(dest="verb", required=True, metavar="VERB")
    tv.add_parser("list", help="all tenants, by name", parents=[common])
    tv.add_parser("show", help="one tenant", parents=[common]).add_argument("name")
    create = tv.add_parser("create", help="create a tenant", parents=[common])
    create.add_argument("name")
    create.add_argument("--vni", type=int, required=True, help="VXLAN VNI / GRE key, 1-16777215")
    create.add_argument("--vlan", type=int, required=True, help="its br0 VLAN on every host, 1-4094")
    create.add_argument("--hosts", help="comma-separated host ids it exists on (default: every host)")
    create.add_argument("--vlan-on", action="append", default=[], metavar="HOST=VLAN",
                        help="a different VLAN on one host (repeatable)")
    update = tv.add_parser("update", help="change some fields of a tenant", parents=[common])
    update.add_argument("name")
    update.add_argument("--vni", type=int)
    update.add_argument("--vlan", type=int)
    where = update.add_mutually_exclusive_group()
    where.add_argument("--hosts", help="comma-separated host ids it exists on")
    where.add_argument("--all-hosts", action="store_true", help="make it exist on every host")
    update.add_argument("--vlan-on", action="append", default=[], metavar="HOST=VLAN",
                        help="set a per-host VLAN; HOST= drops it (repeatable)")
    tv.add_parser("delete", help="delete a tenant", parents=[common]).add_argument("name")

    hosts = sub.add_parser("hosts", help="list and show hosts", parents=[common])
    hv = hosts.add_subparsers(dest="verb", required=True, metavar="VERB")
    hv.add_parser("list", help="all hosts, by id", parents=[common])
    hv.add_parser("show", help="one host: tunnels and tenants", parents=[common]).add_argument("id")
    hv.add_parser("vlans", help="a host's VLAN -> tenant mapping", parents=[common]).add_argument("id")

    sub.add_parser("endpoints", help="a tenant's learned endpoints", parents=[common]).add_argument("tenant")
    sub.add_parser("counters", help="the controller's event counters", parents=[common])
    sub.add_parser("health", help="is the controller ready?", parents=[common])
    return p


def _token(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    path = getattr(args, "token_file", None)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as e:
            raise CliError(f"cannot read the token file: {e}", EXIT_USAGE) from None
        if not token:
            raise CliError(f"the token file {path} is empty", EXIT_USAGE)
        return token
    return env.get("OVERLAY_TOKEN") or None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         env: dict[str, str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    env = dict(os.environ) if env is None else env
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # argparse printed the usage message
        return int(e.code or 0) if e.code in (0, None) else EXIT_USAGE
    try:
        client = Client(getattr(args, "url", None) or env.get("OVERLAY_URL") or DEFAULT_URL,
                        _token(args, env), getattr(args, "timeout", 10.0))
        doc, text = run(args, client)
    except CliError as e:
        print(f"overlayctl: {e}", file=err)
        return e.code
    if getattr(args, "json", False):
        print(json.dumps(doc, indent=2), file=out)
    elif text:
        print(text, file=out)
    if args.what == "health" and not doc.get("ready"):
        return EXIT_API
    return 0

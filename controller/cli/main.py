"""overlayctl: the operator's command-line client for the REST API (stdlib and PyYAML only).

    overlayctl tenants list | show NAME | create NAME --vni N --vlan V | update NAME ... | delete NAME
    overlayctl hosts list | show ID | vlans ID | delete ID
    overlayctl endpoints TENANT [--host ID]
    overlayctl topology                      (a tree, like ovn-nbctl show)
    overlayctl trace TENANT SRC DST [--arp]  (like ovn-trace)
    overlayctl counters | health | completion bash

The commands are declared once, as data (COMMANDS): the parser, the requests, the columns and
the shell completion all come from there. -f table|json|yaml|value (--json = -f json), -c COLUMN.
--url (or $OVERLAY_URL) says where the API is; the token comes from --token-file or $OVERLAY_TOKEN.
On an API error it prints the API's message and exits 1 (2 for usage errors, 3 when the API
cannot be reached).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from controller.cli import fmt
from controller.cli.client import ApiError, Client
from controller.version import __version__

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API) -> None:
        super().__init__(message)
        self.code = code


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


# ---- columns ------------------------------------------------------------------------------

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
    ("joined", lambda h: "yes" if h.get("joined", True) else f"no: {h.get('reason')}"),
]
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


def _show_host(h: dict) -> str:
    head = fmt.table([h], HOST_COLUMNS[:4])
    tunnels = fmt.table(h["tunnels"], [("tunnel", lambda p: p["name"]), ("type", lambda p: p["type"]),
                                       ("remote ip", lambda p: p["remote_ip"]), ("peer", lambda p: p["peer"]),
                                       ("ofport", lambda p: p["ofport"]),
                                       ("managed", lambda p: "yes" if p["managed"] else "adopted")])
    tenants = fmt.table(h["tenants"], [("tenant", lambda t: t["name"]), ("vni", lambda t: t["vni"]),
                                       ("vlan", lambda t: t["vlan"]), ("members", lambda t: _yes(t["members"]))])
    return f"{head}\ndatapath {h['datapath_id'] or '-'}\n\n{tunnels}\n\n{tenants}"


# ---- request bodies -------------------------------------------------------------------------

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


def _create_body(args: argparse.Namespace) -> dict:
    body: dict[str, Any] = {"name": args.name, "vni": args.vni, "vlan": args.vlan}
    if args.hosts is not None:
        body["hosts"] = _host_list(args.hosts)
    overrides = _vlan_overrides(args.vlan_on)
    if any(v is None for v in overrides.values()):
        raise CliError("--vlan-on HOST= (drop an override) is for 'tenants update'", EXIT_USAGE)
    if overrides:
        body["vlans"] = overrides
    return body


def _patch_body(args: argparse.Namespace) -> dict:
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
        raise CliError("nothing to change: give --vni, --vlan, --hosts, --all-hosts or --vlan-on", EXIT_USAGE)
    return patch


def _topology(client: Client, args: argparse.Namespace) -> Any:
    hosts = client.request("GET", "/v1/hosts")
    tenants = client.request("GET", "/v1/tenants")
    endpoints = {t["name"]: client.request("GET", f"/v1/tenants/{_quote(t['name'])}/endpoints") for t in tenants}
    return {"hosts": hosts, "tenants": tenants, "endpoints": endpoints}


# ---- the commands, as data ------------------------------------------------------------------

Arg = tuple[tuple[str, ...], dict[str, Any]]  # add_argument's (names, options)
NAME: Arg = (("name",), {})
HOST_ID: Arg = (("id",), {})
IF_MATCH: Arg = (("--if-match",), {"metavar": "ETAG",
                                   "help": "only if the tenant's ETag is still ETAG (else HTTP 412)"})
VLAN_ON: Arg = (("--vlan-on",), {"action": "append", "default": [], "metavar": "HOST=VLAN",
                                 "help": "a different VLAN on one host (repeatable)"})


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # ("tenants", "list")
    help: str
    method: str = "GET"
    path: Callable[[argparse.Namespace], str] | None = None  # the API path; None: see fetch
    body: Callable[[argparse.Namespace], Any] | None = None
    args: tuple[Arg, ...] = ()
    columns: list[fmt.Column] = field(default_factory=list)
    rows: Callable[[Any], list[dict]] = lambda doc: doc if isinstance(doc, list) else [doc]
    text: Callable[[Any], str] | None = None  # the table format's own text, when not a table
    fetch: Callable[[Client, argparse.Namespace], Any] | None = None  # several requests
    result: Callable[[argparse.Namespace, Any], Any] | None = None  # the document when the API says nothing
    content_type: str = "application/json"


def _tenant_path(a: argparse.Namespace) -> str:
    return f"/v1/tenants/{_quote(a.name)}"


COMMANDS: tuple[Command, ...] = (
    Command(("tenants", "list"), "all tenants, by name", path=lambda a: "/v1/tenants", columns=TENANT_COLUMNS),
    Command(("tenants", "show"), "one tenant", path=_tenant_path, args=(NAME,), columns=TENANT_COLUMNS),
    Command(("tenants", "create"), "create a tenant", "POST", lambda a: "/v1/tenants", _create_body, (
        NAME,
        (("--vni",), {"type": int, "required": True, "help": "VXLAN VNI / GRE key, 1-16777215"}),
        (("--vlan",), {"type": int, "required": True, "help": "its br0 VLAN on every host, 1-4094"}),
        (("--hosts",), {"help": "comma-separated host ids it exists on (default: every host)"}),
        VLAN_ON), TENANT_COLUMNS),
    Command(("tenants", "update"), "change some fields of a tenant", "PATCH", _tenant_path, _patch_body, (
        NAME, (("--vni",), {"type": int}), (("--vlan",), {"type": int}),
        (("--hosts",), {"help": "comma-separated host ids it exists on", "group": "where"}),
        (("--all-hosts",), {"action": "store_true", "help": "make it exist on every host", "group": "where"}),
        (VLAN_ON[0], {**VLAN_ON[1], "help": "set a per-host VLAN; HOST= drops it (repeatable)"}), IF_MATCH),
        TENANT_COLUMNS, content_type="application/merge-patch+json"),
    Command(("tenants", "delete"), "delete a tenant", "DELETE", _tenant_path, args=(NAME, IF_MATCH),
            columns=DELETED_COLUMNS, result=lambda a, _: {"deleted": a.name},
            text=lambda d: f"tenant {d['deleted']} deleted"),
    Command(("hosts", "list"), "all hosts, by id", path=lambda a: "/v1/hosts", columns=HOST_COLUMNS),
    Command(("hosts", "show"), "one host: tunnels and tenants", path=lambda a: f"/v1/hosts/{_quote(a.id)}",
            args=(HOST_ID,), columns=HOST_COLUMNS, text=_show_host),
    Command(("hosts", "vlans"), "a host's VLAN -> tenant mapping", path=lambda a: f"/v1/hosts/{_quote(a.id)}/vlans",
            args=(HOST_ID,), columns=VLAN_COLUMNS),
    Command(("hosts", "delete"), "forget a host that left: its endpoints and the tunnels toward it", "DELETE",
            lambda a: f"/v1/hosts/{_quote(a.id)}", args=(HOST_ID,), columns=DELETED_COLUMNS,
            result=lambda a, _: {"deleted": a.id}, text=lambda d: f"host {d['deleted']} forgotten"),
    Command(("endpoints",), "a tenant's learned endpoints", args=(
        (("tenant",), {}), (("--host",), {"help": "only those behind this host"})),
        path=lambda a: f"/v1/tenants/{_quote(a.tenant)}/endpoints"
        + (f"?host={_quote(a.host)}" if a.host is not None else ""), columns=ENDPOINT_COLUMNS),
    Command(("topology",), "hosts -> tunnels, tenants -> hosts -> endpoints, as a tree", fetch=_topology,
            columns=TOPOLOGY_COLUMNS, rows=lambda d: fmt.topology_rows(d["hosts"], d["tenants"], d["endpoints"]),
            text=lambda d: fmt.topology_text(d["hosts"], d["tenants"], d["endpoints"])),
    Command(("trace",), "trace a frame from a VM through the overlay (like ovn-trace)", "POST",
            lambda a: "/v1/trace", lambda a: {"tenant": a.tenant, "src": a.src, "dst": a.dst, "arp": a.arp}, (
                (("tenant",), {}), (("src",), {"help": "the source VM: its MAC or IP"}),
                (("dst",), {"help": "a MAC (ff:ff:ff:ff:ff:ff: broadcast) or an IP"}),
                (("--arp",), {"action": "store_true", "help": "trace the broadcast ARP request for DST (an IPv4)"})),
            TRACE_COLUMNS, rows=fmt.trace_rows, text=fmt.trace_text),
    Command(("counters",), "the controller's event counters", path=lambda a: "/v1/counters",
            columns=COUNTER_COLUMNS, rows=lambda d: [{"k": k, "v": v} for k, v in d.items()]),
    Command(("health",), "is the controller ready?", path=lambda a: "/v1/health", columns=HEALTH_COLUMNS,
            text=lambda d: "ready" if d.get("ready") else f"not ready: {d.get('reason')}"),
    Command(("completion",), "print a shell completion script: eval \"$(overlayctl completion bash)\"",
            args=((("shell",), {"choices": ["bash"]}),)),
)
BY_WORDS = {c.words: c for c in COMMANDS}


def run(args: argparse.Namespace, client: Client) -> tuple[Any, Command]:
    """Do the command: (the JSON document, the command that made it). CliError when the API says
    no (the API's message) or cannot be reached."""
    cmd = BY_WORDS[args.words]
    try:
        if cmd.fetch is not None:
            return cmd.fetch(client, args), cmd
        assert cmd.path is not None
        headers = {"If-Match": args.if_match} if getattr(args, "if_match", None) else {}
        body = cmd.body(args) if cmd.body else None
        doc = client.request(cmd.method, cmd.path(args), body, cmd.content_type, headers)
    except ApiError as e:
        raise CliError(f"HTTP {e.status}: {e.message}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"cannot reach the API at {client.base}: {reason}", EXIT_UNREACHABLE) from None
    return (cmd.result(args, doc) if cmd.result else doc), cmd


# ---- the parser, from the commands ----------------------------------------------------------

def _common() -> argparse.ArgumentParser:
    # The common options are accepted before and after the command (`overlayctl tenants list --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help=f"API address (default: $OVERLAY_URL or {DEFAULT_URL})")
    common.add_argument("--token-file", default=argparse.SUPPRESS,
                        help="file holding the bearer token (default: $OVERLAY_TOKEN)")
    common.add_argument("-f", "--format", choices=fmt.FORMATS, default=argparse.SUPPRESS,
                        help="output format (default: table)")
    common.add_argument("-c", "--column", action="append", default=argparse.SUPPRESS, metavar="COLUMN",
                        help="show only this column (repeatable; in json/yaml: only these fields)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="the same as -f json")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds (default 10)")
    return common


def _add_args(p: argparse.ArgumentParser, args: tuple[Arg, ...]) -> None:
    groups: dict[str, Any] = {}
    for names, opts in args:
        opts = dict(opts)
        group = opts.pop("group", None)
        target = groups.setdefault(group, p.add_mutually_exclusive_group()) if group else p
        target.add_argument(*names, **opts)


def parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(prog="overlayctl", description="Operate the sdn-overlay controller.",
                                parents=[common], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"overlayctl {__version__}")
    sub = p.add_subparsers(dest="what", required=True, metavar="COMMAND")
    nouns: dict[str, Any] = {}
    for cmd in COMMANDS:
        noun, *verb = cmd.words
        if not verb:
            leaf = sub.add_parser(noun, help=cmd.help, parents=[common])
        else:
            if noun not in nouns:
                verbs = [c.words[1] for c in COMMANDS if c.words[0] == noun]
                group = sub.add_parser(noun, help=f"{', '.join(verbs)} {noun}", parents=[common])
                nouns[noun] = group.add_subparsers(dest="verb", required=True, metavar="VERB")
            leaf = nouns[noun].add_parser(verb[0], help=cmd.help, parents=[common])
        leaf.set_defaults(words=cmd.words)
        _add_args(leaf, cmd.args)
    return p


EPILOG = """formats: -f table (default) | json | yaml | value; -c COLUMN picks columns (repeatable).
examples:
  overlayctl tenants list -f value -c name
  overlayctl endpoints blue --host host2
  overlayctl topology
  overlayctl trace blue 10.0.0.1 10.0.0.2 --arp
  eval "$(overlayctl completion bash)"
"""


def completion_bash(p: argparse.ArgumentParser) -> str:
    """A bash completion script for this parser: commands, then verbs, then each one's options."""
    two, one = [], []
    top = []
    for noun, np in _choices(p).items():
        top.append(noun)
        verbs = _choices(np)
        for verb, vp in verbs.items():
            two.append(f'        "{noun} {verb}") opts="{" ".join(_options(vp))}" ;;')
        one.append(f'            "{noun}") opts="{" ".join([*verbs, *_options(np)])}" ;;')
    one.append(f'            *) opts="{" ".join(top + _options(p))}" ;;')
    return (BASH_TEMPLATE.replace("@TWO@", "\n".join(two)).replace("@ONE@", "\n".join(one))
            .replace("@FORMATS@", " ".join(fmt.FORMATS)).replace("@VALUED@", "|".join(_valued(p))))


def _choices(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subs[0].choices) if subs else {}


def _options(p: argparse.ArgumentParser) -> list[str]:
    """Its long options, and the fixed choices of its positionals (completion's 'bash')."""
    words = {s for a in p._actions for s in a.option_strings if s.startswith("--")}
    words |= {str(c) for a in p._actions if not a.option_strings and a.choices and
              not isinstance(a, argparse._SubParsersAction) for c in a.choices}
    return sorted(words)


def _valued(p: argparse.ArgumentParser) -> list[str]:
    """Every option that takes a value, anywhere: completion skips the value when it finds words."""
    out: set[str] = set()
    stack = [p]
    while stack:
        q = stack.pop()
        out |= {s for a in q._actions if a.nargs != 0 and a.option_strings for s in a.option_strings}
        stack += _choices(q).values()
    return sorted(out)


BASH_TEMPLATE = r"""# bash completion for overlayctl: eval "$(overlayctl completion bash)"
_overlayctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" words=() i opts
    case "$prev" in
        -f|--format) COMPREPLY=($(compgen -W "@FORMATS@" -- "$cur")); return ;;
        --token-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        @VALUED@) return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            @VALUED@) ((i++)) ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
    done
    case "${words[0]} ${words[1]}" in
@TWO@
        *) case "${words[0]}" in
@ONE@
           esac ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _overlayctl overlayctl
"""

def _api_url(url: str) -> str:
    """The API's address as given: an http(s) URL, else a usage error (not an unreachable API)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--url (or $OVERLAY_URL) must be an http:// or https:// URL, not {url!r} "
                       f"(e.g. http://{url.split('://')[-1]})", EXIT_USAGE)
    return url


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
    if args.words == ("completion",):
        print(completion_bash(parser()), file=out)
        return 0
    form = "json" if getattr(args, "json", False) else getattr(args, "format", "table")
    try:
        client = Client(_api_url(getattr(args, "url", None) or env.get("OVERLAY_URL") or DEFAULT_URL),
                        _token(args, env), getattr(args, "timeout", 10.0))
        chosen = getattr(args, "column", [])
        cmd = BY_WORDS[args.words]
        fmt.pick(cmd.columns, chosen)  # a wrong -c is a usage error before anything is sent
        doc, cmd = run(args, client)
        text = fmt.render(form, doc, cmd.rows(doc), cmd.columns, cmd.text(doc) if cmd.text else None, chosen)
    except fmt.ColumnError as e:
        print(f"overlayctl: {e}", file=err)
        return EXIT_USAGE
    except CliError as e:
        print(f"overlayctl: {e}", file=err)
        return e.code
    if text:
        print(text, file=out)
    if args.words == ("health",) and not doc.get("ready"):
        return EXIT_API
    return 0

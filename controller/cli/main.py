"""overlayctl: the operator's command-line client for the REST API (stdlib and PyYAML only).

    overlayctl tenants list | show NAME | create NAME --vni N --vlan V [--may-exist] | update NAME ...
                       | delete NAME [--if-exists]            (writes: --wait until live everywhere)
    overlayctl apply -f overlay.yaml [--prune] [--wait] | diff -f overlay.yaml | export   (GitOps)
    overlayctl status [--revision N] [--wait] | events [--kinds K,...] [--count N]
    overlayctl hosts list | show ID | vlans ID | delete ID [--if-exists] | admit ID | revoke ID
    overlayctl ports list HOST | show HOST PORT | set HOST PORT --mac M [--ip IP ...] | delete HOST PORT
    overlayctl endpoints TENANT [--host ID]
    overlayctl topology                      (a tree, like ovn-nbctl show)
    overlayctl trace TENANT SRC DST [--arp]  (like ovn-trace)
    overlayctl counters | health | completion bash

The commands are declared once, as data (COMMANDS): the parser, the requests, the columns and
the shell completion all come from there. -o table|json|yaml|value (also -f, except in apply and
diff where -f is the file; --json = -o json), -c COLUMN. --url (or $OVERLAY_URL) says where the API
is; the token comes from --token-file, $OVERLAY_TOKEN, or the file the controller makes in its
default state directory (/var/lib/sdn-overlay/api.token) when it is readable, as it is for root on
the controller's machine. --ca-file (or $OVERLAY_CA_FILE) verifies an https:// API against that CA.
Exit codes (controller/cli/declare.py, docs/user/overlayctl.md): 0 done, 1 the API refused (diff:
something would change), 2 usage or an invalid file, 3 the API cannot be reached, 4 not live
everywhere (--wait, status), 5 diff: the API refused the file.
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

from controller.cli import completion, declare, events, fmt
from controller.cli.client import ApiError, Client
from controller.cli.columns import (
    ADMISSION_COLUMNS,
    COUNTER_COLUMNS,
    DELETED_COLUMNS,
    ENDPOINT_COLUMNS,
    EVENT_COLUMNS,
    EXPORT_COLUMNS,
    HEALTH_COLUMNS,
    HOST_COLUMNS,
    LAG_COLUMNS,
    PLAN_COLUMNS,
    PORT_COLUMNS,
    TENANT_COLUMNS,
    TOPOLOGY_COLUMNS,
    TRACE_COLUMNS,
    VLAN_COLUMNS,
    show_host,
)
from controller.cli.declare import EXIT_API, EXIT_NOT_LIVE, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from controller.model import install
from controller.model.tenant_rules import TenantError, tenant_from_json
from controller.version import __version__

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TOKEN_FILE = install.token_path()
NO_TOKEN_HINT = (f" (no token given: pass --token-file, set $OVERLAY_TOKEN, or run as root on the "
                 f"controller's machine, where it is {DEFAULT_TOKEN_FILE})")


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


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


def _admission_text(a: dict) -> str:
    return f"host {a['id']} admitted ({a['by']})" if a["admitted"] else f"host {a['id']} not admitted: {a['reason']}"


def _port_path(a: argparse.Namespace) -> str:
    return f"/v1/hosts/{_quote(a.host)}/ports/{_quote(a.port)}"


def _may_exist(client: Client, args: argparse.Namespace, err: ApiError) -> Any:
    """tenants create --may-exist: a tenant already there, the same in every field, is fine."""
    if err.status != 409:
        raise err
    try:
        asked = tenant_from_json(_create_body(args)).to_json()
        there = client.request("GET", _tenant_path(args))
    except (ApiError, TenantError):
        raise err from None
    if there != asked:
        diff = ", ".join(f"{k} {there[k]!r} (asked {asked[k]!r})" for k in asked if there[k] != asked[k])
        raise CliError(f"tenant '{args.name}' exists with other fields: {diff}; --may-exist keeps only an "
                       "identical one (use tenants update or apply)") from None
    return there


def _if_exists(client: Client, args: argparse.Namespace, err: ApiError) -> Any:
    """delete --if-exists: one that is not there is deleted already."""
    if err.status != 404:
        raise err
    return {"deleted": getattr(args, "name", None) or args.id, "existed": False}


def _topology(client: Client, args: argparse.Namespace) -> Any:
    hosts = client.request("GET", "/v1/hosts")
    tenants = client.request("GET", "/v1/tenants")
    endpoints = {t["name"]: client.request("GET", f"/v1/tenants/{_quote(t['name'])}/endpoints") for t in tenants}
    return {"hosts": hosts, "tenants": tenants, "endpoints": endpoints}


# ---- the commands, as data ------------------------------------------------------------------

Arg = tuple[tuple[str, ...], dict[str, Any]]  # add_argument's (names, options)
NAME: Arg = (("name",), {})
HOST_ID: Arg = (("id",), {})
PORT_HOST: Arg = (("host",), {"help": "the host's id (its OVSDB system-id)"})
PORT: Arg = (("port",), {"help": "the br0 port's name, as the host's OVSDB reports it"})
IF_MATCH: Arg = (("--if-match",), {"metavar": "ETAG",
                                   "help": "only if the tenant's ETag is still ETAG (else HTTP 412)"})
VLAN_ON: Arg = (("--vlan-on",), {"action": "append", "default": [], "metavar": "HOST=VLAN",
                                 "help": "a different VLAN on one host (repeatable)"})
WAIT: Arg = (("--wait",), {"action": "store_true",
                           "help": "then wait until every host's switch holds the change (--timeout S, default "
                                   f"{declare.DEFAULT_WAIT_S:g}); exit 4 naming the hosts that lag"})
IF_EXISTS: Arg = (("--if-exists",), {"action": "store_true", "help": "one that is not there is no error"})
FILE: Arg = (("-f", "--filename"), {"required": True, "metavar": "FILE",
                                    "help": "the overlay file (YAML or JSON; - for standard input)"})
PRUNE: Arg = (("--prune",), {"action": "store_true",
                             "help": "also delete the tenants the file does not name"})


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
    on_error: Callable[[Client, argparse.Namespace, ApiError], Any] | None = None  # the doc, or raise it
    exit: Callable[[Any], int] | None = None  # the exit code from the document (default 0)
    takes_file: bool = False  # -f is its file (the format is -o there)


def _tenant_path(a: argparse.Namespace) -> str:
    return f"/v1/tenants/{_quote(a.name)}"


def _raise(e: ApiError) -> Any:
    raise e


COMMANDS: tuple[Command, ...] = (
    Command(("tenants", "list"), "all tenants, by name", path=lambda a: "/v1/tenants", columns=TENANT_COLUMNS),
    Command(("tenants", "show"), "one tenant", path=_tenant_path, args=(NAME,), columns=TENANT_COLUMNS),
    Command(("tenants", "create"), "create a tenant", "POST", lambda a: "/v1/tenants", _create_body, (
        NAME,
        (("--vni",), {"type": int, "required": True, "help": "VXLAN VNI / GRE key, 1-16777215"}),
        (("--vlan",), {"type": int, "required": True, "help": "its br0 VLAN on every host, 1-4094"}),
        (("--hosts",), {"help": "comma-separated host ids it exists on (default: every host)"}),
        VLAN_ON, (("--may-exist",), {"action": "store_true",
                                     "help": "one already there with these very fields is no error"}), WAIT),
        TENANT_COLUMNS, on_error=lambda c, a, e: _may_exist(c, a, e) if a.may_exist else _raise(e)),
    Command(("tenants", "update"), "change some fields of a tenant", "PATCH", _tenant_path, _patch_body, (
        NAME, (("--vni",), {"type": int}), (("--vlan",), {"type": int}),
        (("--hosts",), {"help": "comma-separated host ids it exists on", "group": "where"}),
        (("--all-hosts",), {"action": "store_true", "help": "make it exist on every host", "group": "where"}),
        (VLAN_ON[0], {**VLAN_ON[1], "help": "set a per-host VLAN; HOST= drops it (repeatable)"}), IF_MATCH, WAIT),
        TENANT_COLUMNS, content_type="application/merge-patch+json"),
    Command(("tenants", "delete"), "delete a tenant", "DELETE", _tenant_path, args=(NAME, IF_MATCH, IF_EXISTS, WAIT),
            columns=DELETED_COLUMNS, result=lambda a, doc: doc or {"deleted": a.name},
            text=lambda d: f"tenant {d['deleted']} {'deleted' if d.get('existed', True) else 'was not there'}",
            on_error=lambda c, a, e: _if_exists(c, a, e) if a.if_exists else _raise(e)),
    Command(("apply",), "make the tenants, admissions and port rules those of a file, at once (all or nothing)", "POST",
            fetch=declare.apply, args=(FILE, PRUNE, WAIT), columns=PLAN_COLUMNS, rows=declare.plan_rows,
            text=declare.apply_text, takes_file=True),
    Command(("diff",), "what apply -f FILE would change (exit 1 if anything)", fetch=declare.diff,
            args=(FILE, PRUNE), columns=PLAN_COLUMNS, rows=declare.plan_rows, text=declare.diff_text,
            exit=declare.diff_exit, takes_file=True),
    Command(("export",), "today's tenants, admissions and port rules as an overlay file (YAML; apply -f takes it)",
            path=lambda a: "/v1/export", columns=EXPORT_COLUMNS,
            rows=lambda d: [{"name": n, **t} for n, t in d["tenants"].items()], text=declare.export_text),
    Command(("status",), "does every host's switch hold a revision of the tenants? (exit 4 if not)",
            fetch=declare.status, args=((("--revision",), {"type": int, "help": "a write's revision (default: the "
                                                                           "latest)"}),
                                        (("--wait",), {"action": "store_true",
                                                       "help": "wait until it does (--timeout S)"})),
            columns=LAG_COLUMNS, rows=lambda d: d["lagging"], text=declare.status_text, exit=declare.status_exit),
    Command(("events",), "follow what changes, as it happens (GET /v1/events)", args=(
        (("--kinds",), {"help": "only these kinds, comma-separated (e.g. endpoint_moved,tenant_changed)"}),
        (("--since",), {"metavar": "ID", "help": "from after this event ID (a reconnect does it by itself)"}),
        (("--count",), {"type": int, "metavar": "N", "help": "stop after N events"}),
        (("--no-follow",), {"dest": "follow", "action": "store_false",
                            "help": "print the events the controller holds, and exit"})),
        columns=EVENT_COLUMNS),
    Command(("hosts", "list"), "all hosts, by id", path=lambda a: "/v1/hosts", columns=HOST_COLUMNS),
    Command(("hosts", "show"), "one host: tunnels and tenants", path=lambda a: f"/v1/hosts/{_quote(a.id)}",
            args=(HOST_ID,), columns=HOST_COLUMNS, text=show_host),
    Command(("hosts", "vlans"), "a host's VLAN -> tenant mapping", path=lambda a: f"/v1/hosts/{_quote(a.id)}/vlans",
            args=(HOST_ID,), columns=VLAN_COLUMNS),
    Command(("hosts", "delete"), "forget a host that left: its endpoints and the tunnels toward it", "DELETE",
            lambda a: f"/v1/hosts/{_quote(a.id)}", args=(HOST_ID, IF_EXISTS), columns=DELETED_COLUMNS,
            result=lambda a, doc: doc or {"deleted": a.id},
            text=lambda d: f"host {d['deleted']} {'forgotten' if d.get('existed', True) else 'was not known'}",
            on_error=lambda c, a, e: _if_exists(c, a, e) if a.if_exists else _raise(e)),
    Command(("hosts", "admit"), "let a host join (it may not have connected yet)", "PUT",
            lambda a: f"/v1/hosts/{_quote(a.id)}/admission", lambda a: {"admitted": True}, (HOST_ID,),
            ADMISSION_COLUMNS, text=_admission_text),
    Command(("hosts", "revoke"), "take a host out: its endpoints, its flows and the tunnels toward it go", "PUT",
            lambda a: f"/v1/hosts/{_quote(a.id)}/admission", lambda a: {"admitted": False}, (HOST_ID,),
            ADMISSION_COLUMNS, text=_admission_text),
    Command(("ports", "list"), "a host's port rules (port security)",
            path=lambda a: f"/v1/hosts/{_quote(a.host)}/ports", args=(PORT_HOST,), columns=PORT_COLUMNS),
    Command(("ports", "show"), "one port's rule", path=_port_path, args=(PORT_HOST, PORT), columns=PORT_COLUMNS),
    Command(("ports", "set"), "let a br0 port send only from these MACs (and IPs)", "PUT", _port_path,
            lambda a: {"macs": a.mac, "ips": a.ip}, (
                PORT_HOST, PORT,
                (("--mac",), {"action": "append", "required": True, "help": "an allowed MAC (repeatable)"}),
                (("--ip",), {"action": "append", "default": [],
                             "help": "an allowed IPv4/IPv6 address of those MACs (repeatable; none: any IP)"})),
            PORT_COLUMNS),
    Command(("ports", "delete"), "remove a port's rule", "DELETE", _port_path, args=(PORT_HOST, PORT),
            columns=DELETED_COLUMNS, result=lambda a, _: {"deleted": f"{a.host}/{a.port}"},
            text=lambda d: f"port rule {d['deleted']} removed"),
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
        try:
            doc = client.request(cmd.method, cmd.path(args), body, cmd.content_type, headers)
        except ApiError as e:
            if cmd.on_error is None:
                raise
            doc = cmd.on_error(client, args, e)
    except ApiError as e:
        hint = NO_TOKEN_HINT if e.status == 401 and not client.token else ""
        raise CliError(f"HTTP {e.status}: {e.message}{hint}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"cannot reach the API at {client.base}: {reason}", EXIT_UNREACHABLE) from None
    return (cmd.result(args, doc) if cmd.result else doc), cmd


# ---- the parser, from the commands ----------------------------------------------------------

def _common(short_format: bool = True) -> argparse.ArgumentParser:
    # The common options are accepted before and after the command (`overlayctl tenants list --json`).
    # -o is the output format everywhere; -f too, except where it names the file (apply, diff).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS,
                        help=f"API address (default: $OVERLAY_URL or {DEFAULT_URL})")
    common.add_argument("--token-file", default=argparse.SUPPRESS,
                        help=f"file holding the bearer token (default: $OVERLAY_TOKEN, else {install.token_path()} "
                             "if readable)")
    common.add_argument("--ca-file", default=argparse.SUPPRESS,
                        help="CA certificate an https:// API's certificate must be signed by (default: "
                             "$OVERLAY_CA_FILE)")
    names = ("-o", "--output", "-f", "--format") if short_format else ("-o", "--output", "--format")
    common.add_argument(*names, dest="format", choices=fmt.FORMATS, default=argparse.SUPPRESS,
                        help="output format (default: table)")
    common.add_argument("-c", "--column", action="append", default=argparse.SUPPRESS, metavar="COLUMN",
                        help="show only this column (repeatable; in json/yaml: only these fields)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="the same as -o json")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help=f"seconds per request (default 10); with --wait, to wait (default "
                             f"{declare.DEFAULT_WAIT_S:g})")
    return common


def _add_args(p: argparse.ArgumentParser, args: tuple[Arg, ...]) -> None:
    groups: dict[str, Any] = {}
    for names, opts in args:
        opts = dict(opts)
        group = opts.pop("group", None)
        target = groups.setdefault(group, p.add_mutually_exclusive_group()) if group else p
        target.add_argument(*names, **opts)


def parser() -> argparse.ArgumentParser:
    common, common_file = _common(), _common(short_format=False)
    p = argparse.ArgumentParser(prog="overlayctl", description="Operate the sdn-overlay controller.",
                                parents=[common], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"overlayctl {__version__}")
    sub = p.add_subparsers(dest="what", required=True, metavar="COMMAND")
    nouns: dict[str, Any] = {}
    for cmd in COMMANDS:
        noun, *verb = cmd.words
        if not verb:
            leaf = sub.add_parser(noun, help=cmd.help, parents=[common_file if cmd.takes_file else common])
        else:
            if noun not in nouns:
                verbs = [c.words[1] for c in COMMANDS if c.words[0] == noun]
                group = sub.add_parser(noun, help=f"{', '.join(verbs)} {noun}", parents=[common])
                nouns[noun] = group.add_subparsers(dest="verb", required=True, metavar="VERB")
            leaf = nouns[noun].add_parser(verb[0], help=cmd.help, parents=[common])
        leaf.set_defaults(words=cmd.words)
        _add_args(leaf, cmd.args)
    return p


EPILOG = """formats: -o table (default) | json | yaml | value; -c COLUMN picks columns (repeatable).
exit codes: 0 done; 1 the API refused (diff: something would change); 2 usage or an invalid file;
  3 the API cannot be reached; 4 not live on every switch (--wait, status); 5 diff: the API refused.
examples:
  overlayctl tenants list -o value -c name
  overlayctl tenants create blue --vni 5001 --vlan 10 --may-exist --wait
  overlayctl diff -f overlay.yaml && echo "nothing to change"
  overlayctl apply -f overlay.yaml --prune --wait --timeout 60
  overlayctl endpoints blue --host host2
  overlayctl topology
  overlayctl trace blue 10.0.0.1 10.0.0.2 --arp
  eval "$(overlayctl completion bash)"
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
    if env.get("OVERLAY_TOKEN"):
        return env["OVERLAY_TOKEN"]
    try:  # on the controller's machine: the token it made at its first start
        with open(DEFAULT_TOKEN_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         env: dict[str, str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    env = dict(os.environ) if env is None else env
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # argparse printed the usage message
        return int(e.code or 0) if e.code in (0, None) else EXIT_USAGE
    if args.words == ("completion",):
        print(completion.bash(parser()), file=out)
        return 0
    form = "json" if getattr(args, "json", False) else getattr(args, "format", "table")
    try:
        client = Client(_api_url(getattr(args, "url", None) or env.get("OVERLAY_URL") or DEFAULT_URL),
                        _token(args, env), getattr(args, "timeout", 10.0),
                        getattr(args, "ca_file", None) or env.get("OVERLAY_CA_FILE"))
        chosen = getattr(args, "column", [])
        cmd = BY_WORDS[args.words]
        fmt.pick(cmd.columns, chosen)  # a wrong -c is a usage error before anything is sent
        if args.words == ("events",):  # a stream: each event printed as it comes
            return events.follow(client, args, form, out, err)
        doc, cmd = run(args, client)
        text = fmt.render(form, doc, cmd.rows(doc), cmd.columns, cmd.text(doc) if cmd.text else None, chosen)
        if text:
            print(text, file=out, flush=True)
        if getattr(args, "wait", False) and cmd.method != "GET":
            return _wait(client, args, err)
    except fmt.ColumnError as e:
        print(f"overlayctl: {e}", file=err)
        return EXIT_USAGE
    except CliError as e:
        print(f"overlayctl: {e}", file=err)
        return e.code
    except KeyboardInterrupt:
        return 130
    if args.words == ("health",) and not doc.get("ready"):
        return EXIT_API
    return cmd.exit(doc) if cmd.exit is not None else 0


def _wait(client: Client, args: argparse.Namespace, err: TextIO) -> int:
    """--wait after a write: until every host's switch holds it; exit 4 naming the hosts that lag."""
    try:
        status = declare.wait_live(client, getattr(args, "timeout", None))
    except ApiError as e:
        raise CliError(f"HTTP {e.status}: {e.message}") from None
    except (urllib.error.URLError, OSError) as e:
        raise CliError(f"cannot reach the API at {client.base}: {getattr(e, 'reason', e)}", EXIT_UNREACHABLE) from None
    print(f"overlayctl: {declare.status_text(status)}", file=err)
    return 0 if status["live"] else EXIT_NOT_LIVE

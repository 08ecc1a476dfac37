"""overlayctl events: follow GET /v1/events (Server-Sent Events), like Faucet's event socket.

One line per event (table), one JSON object per line (json), or one YAML document each (yaml).
A dropped stream is resumed from the last event seen (Last-Event-ID): nothing is lost while the
controller still holds it; when it does not, the stream starts with a `reset` event (read the
state again). --count N stops after N events; --no-follow prints what is held and exits.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from controller.cli.client import ApiError, Client
from controller.cli.declare import EXIT_OK, EXIT_UNREACHABLE, CliError
from controller.cli.fmt import as_yaml

READ_TIMEOUT_S = 45.0  # the controller sends a keepalive every 15 s: three missed, the stream is dead
RETRY_S = 1.0


def parse_sse(lines: Iterable[bytes]) -> Iterator[dict]:
    """Events from a text/event-stream, as their JSON data (comments and retry lines skipped)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield json.loads("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def render(doc: dict, form: str) -> str:
    if form == "json":
        return json.dumps(doc, separators=(",", ":"))
    if form == "yaml":
        return "---\n" + as_yaml(doc)
    if form == "value":
        return f"{doc['id']} {doc['kind']}"
    when = datetime.fromtimestamp(doc["at"]).strftime("%H:%M:%S.%f")[:-3]
    rest = " ".join(f"{k}={v}" for k, v in doc.items() if k not in ("id", "kind", "at"))
    return f"{when} {doc['kind']:<18} {rest}".rstrip()


def _query(args: argparse.Namespace, since: str | None) -> str:
    q = {k: v for k, v in (("kinds", args.kinds), ("since", since)) if v}
    return "/v1/events" + (f"?{urllib.parse.urlencode(q)}" if q else "")


def follow(client: Client, args: argparse.Namespace, form: str, out: TextIO, err: TextIO) -> int:
    if not args.follow:  # what is held, at once, a page at a time
        since = args.since
        while True:
            try:
                doc = client.request("GET", _query(args, since))
            except ApiError as e:
                raise CliError(f"HTTP {e.status}: {e.message}") from None
            for event in ([_reset(doc)] if doc.get("reset") else []) + doc["events"]:
                print(render(event, form), file=out)
            if not doc.get("more"):
                return EXIT_OK
            since = doc["last_id"]
    last, seen, connected = args.since, 0, False
    while True:
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last} if last else {})}
        try:
            with client.open(_query(args, None), headers, READ_TIMEOUT_S) as resp:
                connected = True
                for event in parse_sse(resp):
                    print(render(event, form), file=out, flush=True)
                    last = event["id"]
                    seen += 1
                    if args.count and seen >= args.count:
                        return EXIT_OK
            why = "the controller closed it"
        except ApiError as e:
            raise CliError(f"HTTP {e.status}: {e.message}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            if not connected:
                raise CliError(f"cannot reach the API at {client.base}: {getattr(e, 'reason', e)}",
                               EXIT_UNREACHABLE) from None
            why = str(getattr(e, "reason", e))
        print(f"overlayctl: the event stream broke ({why}); resuming after {last}", file=err, flush=True)
        time.sleep(RETRY_S)


def _reset(doc: dict) -> dict[str, Any]:
    return {"id": doc["last_id"], "kind": "reset", "at": time.time(), "reason": doc["reset"]}

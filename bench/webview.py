"""What the web view's data costs the controller's event loop at N hosts (issue 26), in process:
GET /v1/topology through the real WSGI app, against the per-pair document it replaced (the
baseline, measured in the same run: every host's tunnel toward every other host, which is what
/v1/topology listed until then, 999,000 pairs at 1,000 hosts).

    .venv/bin/python -m bench.webview [--hosts 1000] [--tenants 100] [--json FILE]

The hosts are built as their OVSDB views show them (mesh: a port toward every other host, ours),
their switches connected; nothing is programmed (the view reads, it does not program). Everything
a request does runs on the event loop's one thread: the counts (in slices of at most
web.SLICE_S, the loop let go between them) and the JSON's encoding; both are timed, and the
longest time the loop was held without a break. Reads:

- per pair (baseline): every host's tunnel toward every other host, encoded, as before;
- first read: every host counted (a controller's first request, or after a reload);
- next read, nothing changed (what the page does on an event that changed no tunnel);
- after one host's ports changed, and after one host joined (its peers counted again, not all).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from os_ken.lib import hub
from webob import Request

from bench.report import markdown_table, publish
from controller.core.core import Core
from controller.model.state import HostView, Tenant, TunnelPort
from controller.northbound import web
from controller.northbound.metrics import Metrics
from controller.northbound.rest import Api
from controller.northbound.topology import host_tunnels_json
from controller.pipeline import tunnel_kinds
from controller.shell.config import defaults
from controller.shell.loop import GC_THRESHOLDS

READS = ("per pair (before)", "first read", "next read, nothing changed", "after one host's ports changed",
         "after one host joined")


def ip_of(i: int) -> str:
    return f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}"


def view(i: int, n: int, ports: tuple[int, ...] | None = None) -> HostView:
    kind = tunnel_kinds.get("vxlan")
    peers = [j for j in range(n) if j != i] if ports is None else ports
    tunnels = tuple(TunnelPort(kind.port_name(ip_of(j)), "vxlan", ip_of(j), 10 + k, True)
                    for k, j in enumerate(peers))
    return HostView(f"h{i:04d}", ip_of(i), datapath_id=i + 1, bridge_uuid=f"br{i}", patch_ofport=1,
                    tunnels=tunnels)


class Backend:
    """What the API needs of the app, in process: the core, and calls timed as the loop would run them."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.metrics = Metrics()
        self.held: list[float] = []  # each call's time on the loop

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.held.append(time.perf_counter() - started)


def build(hosts: int, tenants: int) -> tuple[Core, Api, Backend]:
    core = Core(defaults(), [Tenant(f"t{k}", 1000 + k, 1 + k) for k in range(tenants)])
    for i in range(hosts):  # into the index as their views say (the core's reactions are not measured here)
        core.ix.put_host(view(i, hosts))
        core.datapaths.add(i + 1)
    backend = Backend(core)
    return core, Api(backend), backend  # type: ignore[arg-type]


def settled() -> None:
    """What the app's ticker does every 0.25 s (controller/shell/loop.py): the collector's
    thresholds, and what survived moved out of its sight."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()


def timed_request(api: Api, backend: Backend) -> dict[str, float]:
    """One GET /v1/topology: the loop's time (counting and encoding), its longest hold, the size."""
    settled()
    backend.held.clear()
    started = time.perf_counter()
    resp = Request.blank("/v1/topology").get_response(api)
    total = time.perf_counter() - started
    assert resp.status_int == 200, resp.text
    counted = sum(backend.held)
    encode = total - counted  # the rest of the request: the JSON's encoding, in the request's green thread
    return {"loop_ms": total * 1000, "longest_hold_ms": max(max(backend.held, default=0), encode) * 1000,
            "count_ms": counted * 1000, "encode_ms": encode * 1000, "slices": len(backend.held),
            "bytes": len(resp.body)}


def per_pair(core: Core) -> dict[str, float]:
    """The baseline: what /v1/topology computed and sent before, every pair of hosts."""
    settled()
    started = time.perf_counter()
    r = core.read
    pairs = [{"host": h, **t} for h in sorted(r.hosts) for t in host_tunnels_json(r, h)["tunnels"]]
    body = json.dumps({"hosts": len(r.hosts), "tunnels": pairs}, indent=1).encode()
    took = (time.perf_counter() - started) * 1000
    return {"loop_ms": took, "longest_hold_ms": took, "count_ms": took, "encode_ms": 0.0, "slices": 1,
            "bytes": len(body), "pairs": len(pairs)}


def run(hosts: int, tenants: int) -> dict[str, dict[str, float]]:
    core, api, backend = build(hosts, tenants)
    out = {READS[0]: per_pair(core)}
    out[READS[1]] = timed_request(api, backend)
    out[READS[2]] = timed_request(api, backend)
    core.ix.put_host(view(7, hosts, ports=tuple(j for j in range(hosts) if j not in (7, 8))))  # one port gone
    out[READS[3]] = timed_request(api, backend)
    core.ix.put_host(view(hosts, hosts + 1, ports=()))  # a new host, no ports yet: every other lacks one to it
    core.datapaths.add(hosts + 1)
    out[READS[4]] = timed_request(api, backend)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--tenants", type=int, default=100)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    hub.sleep(0)  # the hub's loop exists: the handler yields between its slices
    results = run(args.hosts, args.tenants)
    base = results[READS[0]]["loop_ms"]
    rows = [(read, f"{r['loop_ms']:.1f}", f"{r['longest_hold_ms']:.1f}", int(r["slices"]), f"{r['bytes'] / 1e6:.2f}",
             f"{r['loop_ms'] / base:.4f}") for read, r in results.items()]
    table = markdown_table(["read", "event loop, ms", "longest hold, ms", "slices", "MB", "ratio to per pair"],
                           rows, "lrrrrr")
    # (the per-pair row times its computing and encoding together, as it ran: one hold)
    doc = {"hosts": args.hosts, "tenants": args.tenants, "slice_s": web.SLICE_S, "results": results,
           "ratio_to_per_pair": {read: r["loop_ms"] / base for read, r in results.items()}}
    publish(f"GET /v1/topology at {args.hosts} hosts (mesh: {args.hosts - 1} ports each), {args.tenants} tenants\n\n"
            + table, doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""REST write latency by tenant store: SQLite (the baseline) against etcd with 1 and 3 members,
all measured in the same run on this machine.

    flock /tmp/overlay-lab.lock .venv/bin/python -m bench.store_latency [--count 200] [--json FILE]

For each store a real controller process (lab/controller.py) is started on loopback, with its
etcd cluster (lab/etcd.py) where there is one; then `count` tenants are created (POST), patched
(PATCH, a new VLAN) and deleted (DELETE), one request at a time, each timed at the client from
sending to the whole answer. An etcd write is acknowledged after a quorum of members has it on
disk (fsync), an SQLite one after its WAL commit is (synchronous=FULL). Prints p50 and p99 per
operation and their ratio to SQLite's, then the same as JSON.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack

from bench.report import markdown_table, publish
from lab.controller import Controller
from lab.etcd import EtcdCluster

STORES = ("sqlite", "etcd-1", "etcd-3")
OPS = ("create", "patch", "delete")


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000.0


def measure(store: str, count: int) -> dict[str, dict[str, float]]:
    """{op: {"p50_ms", "p99_ms", "mean_ms"}} for `count` writes of each op through one controller."""
    with ExitStack() as stack:
        extra = {}
        if store != "sqlite":
            cluster = stack.enter_context(EtcdCluster(int(store.split("-")[1])))
            extra = {"overlay": {"store": "etcd"}, "etcd": {"endpoints": ",".join(cluster.endpoints)}}
        ctl = Controller("127.0.0.1", extra=extra)
        stack.callback(shutil.rmtree, ctl.workdir, True)
        stack.enter_context(ctl)
        api = ctl.api
        names = [f"bench{i}" for i in range(count)]
        samples: dict[str, list[float]] = {op: [] for op in OPS}
        for i, name in enumerate(names):
            body = {"name": name, "vni": 10000 + i, "vlan": 1 + i % 4000, "hosts": [f"h{i}"]}
            samples["create"].append(_timed(lambda b=body: api.post("/v1/tenants", b)))
        for i, name in enumerate(names):
            samples["patch"].append(_timed(lambda n=name, i=i: api.request("PATCH", f"/v1/tenants/{n}",
                                                                            {"vlan": 1 + (i + 7) % 4000})))
        for name in names:
            samples["delete"].append(_timed(lambda n=name: api.delete(f"/v1/tenants/{n}")))
    return {op: {"p50_ms": round(_percentile(s, 50), 2), "p99_ms": round(_percentile(s, 99), 2),
                 "mean_ms": round(statistics.fmean(s), 2)} for op, s in samples.items()}


def report(results: dict[str, dict[str, dict[str, float]]], count: int) -> str:
    base = results["sqlite"]
    rows = [(store, op, f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['p50_ms'] / base[op]['p50_ms']:.2f}",
             f"{r['p99_ms'] / base[op]['p99_ms']:.2f}") for store, ops in results.items() for op, r in ops.items()]
    return (f"REST write latency, {count} requests per operation, one at a time (ms; x = ratio to SQLite)\n"
            + markdown_table(("store", "op", "p50", "p99", "p50 x", "p99 x"), rows, "llrrrr"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200, help="tenants created, patched and deleted per store")
    ap.add_argument("--stores", nargs="+", default=list(STORES), choices=STORES)
    ap.add_argument("--json", metavar="FILE", help="also write the results there")
    args = ap.parse_args(argv)
    stores = ["sqlite"] + [s for s in args.stores if s != "sqlite"]  # the baseline, always
    results = {store: measure(store, args.count) for store in stores}
    doc = {"count": args.count, "results": results,
           "ratio_to_sqlite": {store: {op: {q: round(r[q] / results["sqlite"][op][q], 2) for q in ("p50_ms", "p99_ms")}
                                       for op, r in ops.items()} for store, ops in results.items()}}
    publish(report(results, args.count), doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

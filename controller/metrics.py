"""Prometheus metrics at /metrics, read from the core at scrape time.

The core keeps plain counters (core.counters); this module only names them. A snapshot is taken
on the app's event loop (like every other read), then rendered in the exposition format by
prometheus_client from a private registry, so several Api objects (tests) never collide.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from controller.core import Core

CONTENT_TYPE = CONTENT_TYPE_LATEST
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# core.counters key -> (metric name without _total, help). Absent keys are exported as 0, so a
# dashboard does not break on a controller that has not seen the event yet.
NAMED_COUNTERS: dict[str, tuple[str, str]] = {
    "flow_mods": ("overlay_flow_mods", "flow-mods sent to switches"),
    "endpoints_learned": ("overlay_endpoints_learned", "endpoints (MACs) learned"),
    "endpoints_aged": ("overlay_endpoints_aged", "endpoints forgotten after going silent"),
    "bindings_learned": ("overlay_bindings_learned", "IP-to-MAC bindings learned"),
    "mac_moves": ("overlay_mac_moves", "MACs seen moving to another host"),
    "arp_proxied": ("overlay_arp_proxied", "ARP requests answered in the switches"),
    "nd_proxied": ("overlay_nd_proxied", "neighbour solicitations answered in the switches"),
    "floods_suppressed": ("overlay_floods_suppressed", "floods kept off the underlay"),
    "floods_sent": ("overlay_floods_sent", "floods sent over the underlay"),
    "switch_errors": ("overlay_switch_errors", "OpenFlow error messages from switches"),
}
PACKET_IN = "packet_in"
PACKET_IN_PREFIX = "packet_in_"


@dataclass
class Snapshot:
    """What one scrape shows; built on the event loop, rendered off it."""

    hosts: int = 0
    hosts_ovsdb: int = 0
    hosts_openflow: int = 0
    tenants: int = 0
    endpoints: int = 0
    counters: dict[str, int] = field(default_factory=dict)


def snapshot(core: Core) -> Snapshot:
    hosts = list(core.hosts.values())
    return Snapshot(
        hosts=len(hosts),
        hosts_ovsdb=sum(1 for h in hosts if h.ovsdb_connected),
        hosts_openflow=sum(1 for h in hosts if h.view.datapath_id in core.datapaths),
        tenants=len(core.tenants),
        endpoints=len(core.endpoints),
        counters=dict(core.counters),
    )


class RestStats:
    """REST requests by method, route and status; counted in the WSGI green threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_key: Counter[tuple[str, str, int]] = Counter()

    def count(self, method: str, route: str, status: int) -> None:
        method = method if method in KNOWN_METHODS else "other"  # clients choose methods: bound the labels
        with self._lock:
            self.by_key[(method, route, status)] += 1

    def items(self) -> list[tuple[tuple[str, str, int], int]]:
        with self._lock:
            return sorted(self.by_key.items())


def families(snap: Snapshot, rest: RestStats) -> Iterator[Metric]:
    g = GaugeMetricFamily("overlay_hosts", "hosts known to the controller")
    g.add_metric([], snap.hosts)
    yield g
    g = GaugeMetricFamily("overlay_hosts_connected", "hosts connected, by channel", labels=["channel"])
    g.add_metric(["ovsdb"], snap.hosts_ovsdb)
    g.add_metric(["openflow"], snap.hosts_openflow)
    yield g
    g = GaugeMetricFamily("overlay_tenants", "tenants configured")
    g.add_metric([], snap.tenants)
    yield g
    g = GaugeMetricFamily("overlay_endpoints", "endpoints (MACs) currently learned")
    g.add_metric([], snap.endpoints)
    yield g

    c = CounterMetricFamily("overlay_packet_ins", "packet-ins received from switches")
    c.add_metric([], snap.counters.get(PACKET_IN, 0))
    yield c
    c = CounterMetricFamily("overlay_packet_ins_by_reason",
                            "packet-ins the controller did not learn from, by reason", labels=["reason"])
    for key in sorted(k for k in snap.counters if k.startswith(PACKET_IN_PREFIX)):
        c.add_metric([key[len(PACKET_IN_PREFIX):]], snap.counters[key])
    yield c
    for key, (name, help_text) in NAMED_COUNTERS.items():
        c = CounterMetricFamily(name, help_text)
        c.add_metric([], snap.counters.get(key, 0))
        yield c
    # Everything the core counts, also the keys added after this module was written.
    c = CounterMetricFamily("overlay_core_events", "every counter the core keeps, by name", labels=["name"])
    for key in sorted(snap.counters):
        c.add_metric([key], snap.counters[key])
    yield c

    c = CounterMetricFamily("overlay_rest_requests", "REST API requests, by method, route and status",
                            labels=["method", "route", "code"])
    for (method, route, status), n in rest.items():
        c.add_metric([method, route, str(status)], n)
    yield c


class _Collector:
    def __init__(self) -> None:
        self.snap = Snapshot()
        self.rest = RestStats()

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snap, self.rest)


class Metrics:
    """One Api's metrics: feed it REST results, render it with a fresh snapshot."""

    def __init__(self) -> None:
        self._collector = _Collector()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._collector)
        self._render_lock = threading.Lock()

    @property
    def rest(self) -> RestStats:
        return self._collector.rest

    def register(self, collector: object) -> None:
        """Also export a collector read off the event loop (e.g. the loop's own lag)."""
        self._registry.register(collector)  # type: ignore[arg-type]

    def render(self, snap: Snapshot | None) -> bytes:
        """None: the event loop did not answer; the previous snapshot is shown again."""
        with self._render_lock:
            if snap is not None:
                self._collector.snap = snap
            return generate_latest(self._registry)

"""Prometheus metrics at /metrics (and on an optional read-only listener, [overlay] metrics_port).

Prometheus conventions: base units (`_seconds`), `_total` counters, a `host` label where an
operator looks at one host (connected, flows, packet-ins), and no metric that re-exports others
(sums and counts are the query's job). Gauges and the core's counters are read from the core at
scrape time, in a snapshot taken on the app's event loop; the app feeds the histograms and the
per-host packet-ins as things happen, also on the loop. Each Metrics has its own registry, so
several Api objects (tests) never collide; the default process, platform and GC collectors are
registered on it too.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from webob import Request, Response

from controller.core.counters import OPENFLOW_MALFORMED, OVSDB_MALFORMED
from controller.core.identity import COUNTER as IDENTITY_REFUSED
from controller.core.read_model import ReadModel
from controller.northbound.auth import HostNames
from controller.version import __version__

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # no <histogram>_created series: in the text format they are one more gauge each
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_PENDING_BARRIERS = 4096  # a switch that never answers must not grow this without bound

# core.counters key -> (metric name without _total, help). Absent keys are exported as 0, so a
# dashboard does not break on a controller that has not seen the event yet. A new core counter
# is exported once it is named here.
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
    "unknown_ip_holddowns": ("overlay_unknown_ip_holddowns", "hold-downs started for unanswered IPs"),
    "switch_errors": ("overlay_switch_errors", "OpenFlow error messages from switches"),
    "endpoints_recovered": ("overlay_endpoints_recovered",
                            "endpoints read back from their host's switch after a (re)connect"),
    "learning_capped": ("overlay_learning_capped", "frames not learned: their (host, tenant) is at max_endpoints"),
    "ip_rebinds": ("overlay_ip_rebinds", "IPs announced by another MAC and rebound to it (VIP failover)"),
    "mac_flaps": ("overlay_mac_flaps", "MACs found flapping between hosts and held"),
    "mac_flaps_damped": ("overlay_mac_flaps_damped", "moves refused while a flapping MAC was held"),
    "hosts_withdrawn": ("overlay_hosts_withdrawn", "hosts unreachable past host_grace: endpoints withdrawn"),
    "port_security_dropped": ("overlay_port_security_dropped",
                              "frames from br0 dropped in the switches: a source no port rule allows"),
    "port_security_claims_ignored": ("overlay_port_security_claims_ignored",
                                     "ARP/ND claims not learned: an address the port's rule does not allow"),
}
# core.counters <prefix><kind> -> one counter labelled by kind: garbage on the control channels.
LABELLED_BY_KIND = (
    (OPENFLOW_MALFORMED, "overlay_openflow_malformed",
     "malformed or unusable OpenFlow messages: counted, and the switch's connection closed"),
    (OVSDB_MALFORMED, "overlay_ovsdb_malformed",
     "malformed or hostile OVSDB messages: counted, and the host's connection closed"),
)
SCRAPE_TIMEOUT_S = 5.0
REST_REFUSALS = ("host", "token")  # overlay_rest_refused_total{reason}
PACKET_IN_PREFIX = "packet_in_"  # core.counters packet_in_<reason>: packet-ins not learned from

# Histogram buckets, in seconds: handling a packet-in and computing a reconcile take 0.1-50 ms
# on the event loop; programming a switch (write -> barrier reply) up to seconds under load.
LOOP_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5)
SWITCH_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class HostSample:
    host: str
    ovsdb: bool
    openflow: bool
    flows: int
    packet_ins: int
    revision: int | None = None  # of the tenants, as its switch holds them (None: not known)


@dataclass
class Snapshot:
    """What one scrape shows; built on the event loop, rendered off it."""

    hosts: list[HostSample] = field(default_factory=list)
    revision: int = 0
    tenants: int = 0
    endpoints: int = 0
    waiting: int = 0  # hosts connected but not admitted
    counters: dict[str, int] = field(default_factory=dict)


def snapshot(r: ReadModel, packet_ins: dict[int, int],
             holds: Callable[[int, int | None], int | None] = lambda dpid, computed: computed) -> Snapshot:
    """`packet_ins` by datapath ID; those of a switch no host claims (yet) are labelled by its DPID.
    `holds`: the revision a switch holds given the core's (its barrier replies confirm it)."""
    hosts, claimed = [], set()
    for host in sorted(r.hosts.values(), key=lambda h: h.id):
        dpid = host.view.datapath_id
        claimed.add(dpid)
        computed = r.computed_for(host)[0]
        held = holds(dpid, computed) if dpid is not None and computed is not None else None
        hosts.append(HostSample(host.id, host.ovsdb_connected, r.openflow_connected(host), r.flow_count(host),
                                packet_ins.get(dpid, 0) if dpid is not None else 0, held))
    for dpid in sorted(set(packet_ins) - claimed):
        hosts.append(HostSample(f"dpid:{dpid:016x}", False, r.switch_connected(dpid), 0, packet_ins[dpid]))
    return Snapshot(hosts=hosts, revision=r.revision, tenants=len(r.tenants), endpoints=r.endpoint_count(),
                    waiting=len(r.waiting),
                    counters=r.counters())


class RestStats:
    """REST requests by method, route and status; counted in the WSGI green threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_key: Counter[tuple[str, str, int]] = Counter()
        self.refusals: Counter[str] = Counter({reason: 0 for reason in REST_REFUSALS})

    def count(self, method: str, route: str, status: int) -> None:
        method = method if method in KNOWN_METHODS else "other"  # clients choose methods: bound the labels
        with self._lock:
            self.by_key[(method, route, status)] += 1

    def items(self) -> list[tuple[tuple[str, str, int], int]]:
        with self._lock:
            return sorted(self.by_key.items())

    def refused(self, reason: str) -> None:
        """A request refused before its handler: a foreign Host header, a missing or wrong token."""
        with self._lock:
            self.refusals[reason] += 1


def families(snap: Snapshot, rest: RestStats) -> Iterator[Metric]:
    g = GaugeMetricFamily("overlay_build_info", "the controller's version", labels=["version"])
    g.add_metric([__version__], 1)
    yield g
    g = GaugeMetricFamily("overlay_host_connected", "1 if the host is connected on the channel, else 0",
                          labels=["host", "channel"])
    for h in snap.hosts:
        g.add_metric([h.host, "ovsdb"], int(h.ovsdb))
        g.add_metric([h.host, "openflow"], int(h.openflow))
    yield g
    g = GaugeMetricFamily("overlay_host_flows", "flows the controller has installed on the host's br1",
                          labels=["host"])
    for h in snap.hosts:
        g.add_metric([h.host], h.flows)
    yield g
    c = CounterMetricFamily("overlay_packet_ins", "packet-ins received from the host's br1", labels=["host"])
    for h in snap.hosts:
        c.add_metric([h.host], h.packet_ins)
    yield c
    c = CounterMetricFamily("overlay_packet_ins_not_learned",
                            "packet-ins the controller did not learn from, by reason", labels=["reason"])
    for key in sorted(k for k in snap.counters if k.startswith(PACKET_IN_PREFIX)):
        c.add_metric([key[len(PACKET_IN_PREFIX):]], snap.counters[key])
    yield c
    for prefix, name, help_text in LABELLED_BY_KIND:
        c = CounterMetricFamily(name, help_text, labels=["kind"])
        for key in sorted(k for k in snap.counters if k.startswith(prefix)):
            c.add_metric([key[len(prefix):]], snap.counters[key])
        yield c
    c = CounterMetricFamily("overlay_identity_refused",
                            "connections refused for claiming a host's system-id or a br1's datapath ID they may "
                            "not hold, by channel and reason (docs/operator/security.md)",
                            labels=["channel", "reason"])
    for key in sorted(k for k in snap.counters if k.startswith(IDENTITY_REFUSED)):
        channel, _, reason = key[len(IDENTITY_REFUSED):].partition(":")
        c.add_metric([channel, reason], snap.counters[key])
    yield c
    g = GaugeMetricFamily("overlay_hosts_waiting", "hosts connected but not admitted: given nothing until an "
                                                   "operator admits them")
    g.add_metric([], snap.waiting)
    yield g
    g = GaugeMetricFamily("overlay_config_revision",
                          "the revision of the tenants this controller holds (every write makes a higher one)")
    g.add_metric([], snap.revision)
    yield g
    g = GaugeMetricFamily("overlay_config_applied_revision",
                          "the revision of the tenants the host's switch holds, barrier-confirmed (absent: "
                          "not known: disconnected, being read back, or not joined)", labels=["host"])
    for h in snap.hosts:
        if h.revision is not None:
            g.add_metric([h.host], h.revision)
    yield g
    g = GaugeMetricFamily("overlay_tenants", "tenants configured")
    g.add_metric([], snap.tenants)
    yield g
    g = GaugeMetricFamily("overlay_endpoints", "endpoints (MACs) currently learned")
    g.add_metric([], snap.endpoints)
    yield g
    g = GaugeMetricFamily("overlay_gc_frozen_objects",
                          "objects the controller keeps out of the garbage collector's sight (its long-lived "
                          "state, frozen every quarter second): grows with hosts, tenants, endpoints and flows, "
                          "not with requests")
    g.add_metric([], gc.get_freeze_count())
    yield g
    for key, (name, help_text) in NAMED_COUNTERS.items():
        c = CounterMetricFamily(name, help_text)
        c.add_metric([], snap.counters.get(key, 0))
        yield c
    c = CounterMetricFamily("overlay_rest_requests", "REST API requests, by method, route and status",
                            labels=["method", "route", "code"])
    for (method, route, status), n in rest.items():
        c.add_metric([method, route, str(status)], n)
    yield c
    c = CounterMetricFamily("overlay_rest_refused", "REST and metrics requests refused: a Host header that "
                            "is not one of the listener's names (421), a missing or wrong token (401)",
                            labels=["reason"])
    for reason, n in sorted(rest.refusals.items()):
        c.add_metric([reason], n)
    yield c


class _Collector:
    def __init__(self) -> None:
        self.snap = Snapshot()
        self.rest = RestStats()

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snap, self.rest)


class Metrics:
    """One controller's metrics: fed by the app and the API, rendered with a fresh snapshot."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self._collector = _Collector()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._collector)
        for default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self._registry.register(default)
        self._render_lock = threading.Lock()
        self.packet_in_seconds = Histogram(
            "overlay_packet_in_duration_seconds", "handling one packet-in on the event loop, sends included",
            buckets=LOOP_BUCKETS, registry=self._registry)
        self.programming_seconds = Histogram(
            "overlay_flow_programming_duration_seconds",
            "one batch of flow, group and meter changes: sent to a switch until its barrier reply",
            buckets=SWITCH_BUCKETS, registry=self._registry)
        self.reconcile_seconds = Histogram(
            "overlay_reconcile_duration_seconds",
            "reconciling what changed: from the first dirty partition until none is left (recomputed "
            "in turns of 5 ms, sends included)",
            buckets=SWITCH_BUCKETS + (30.0, 60.0, 120.0), registry=self._registry)
        self.packet_ins: Counter[int] = Counter()  # by datapath ID
        self._barriers: dict[tuple[int, int], float] = {}  # (dpid, xid) -> sent at

    @property
    def rest(self) -> RestStats:
        return self._collector.rest

    # ---- fed by the app, on its event loop ---------------------------------------------------

    def packet_in(self, dpid: int, seconds: float) -> None:
        self.packet_ins[dpid] += 1
        self.packet_in_seconds.observe(seconds)

    def reconciled(self, seconds: float) -> None:
        self.reconcile_seconds.observe(seconds)

    def barrier_sent(self, dpid: int, xid: int, since: float | None = None) -> None:
        """A barrier confirming the writes made since `since` (default: now)."""
        if len(self._barriers) >= MAX_PENDING_BARRIERS:
            del self._barriers[next(iter(self._barriers))]  # the oldest: its reply is not coming
        self._barriers[(dpid, xid)] = self.clock() if since is None else since

    def barrier_replied(self, dpid: int, xid: int) -> None:
        sent = self._barriers.pop((dpid, xid), None)
        if sent is not None:
            self.programming_seconds.observe(self.clock() - sent)

    def datapath_gone(self, dpid: int) -> None:
        for key in [k for k in self._barriers if k[0] == dpid]:
            del self._barriers[key]
        self.packet_ins.pop(dpid, None)

    # ---- scrapes ------------------------------------------------------------------------------

    def register(self, collector: object) -> None:
        """Also export a collector read off the event loop (e.g. the loop's own lag)."""
        self._registry.register(collector)  # type: ignore[arg-type]

    def render(self, snap: Snapshot | None) -> bytes:
        """None: the event loop did not answer; the previous snapshot is shown again."""
        with self._render_lock:
            if snap is not None:
                self._collector.snap = snap
            return generate_latest(self._registry)

    def response(self, backend: Any) -> Response:
        """The /metrics answer: a snapshot from the backend's event loop, rendered off it."""
        try:
            snap = backend.call(lambda: snapshot(backend.core.read, dict(self.packet_ins), backend.switch_holds),
                                timeout=SCRAPE_TIMEOUT_S)
        except TimeoutError:  # a stuck event loop: still show its lag, with the last snapshot
            snap = None
        resp = Response(status=200, body=self.render(snap))
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp


class Listener:
    """The read-only metrics listener ([overlay] metrics_host/metrics_port): GET /metrics, nothing else.

    No token: Prometheus can scrape it without being let onto the write API's port.
    """

    ALLOW = "GET, HEAD"

    def __init__(self, backend: Any, metrics: Metrics, hosts: HostNames | None = None) -> None:
        self.b = backend
        self.metrics = metrics
        self.hosts = hosts  # the listener's names (None: any Host header)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        req = Request(environ)
        if self.hosts is not None and not self.hosts.allows(req.headers.get("Host")):
            self.metrics.rest.refused("host")
            resp = Response(status="421 Misdirected Request",
                            json_body={"error": f"this listener is not {req.headers['Host']!r} (Host header)"})
        elif req.path_info != "/metrics":
            resp = Response(status=404, json_body={"error": "only /metrics is served here"})
        elif req.method not in ("GET", "HEAD"):
            resp = Response(status=405, json_body={"error": f"method {req.method} not allowed; use {self.ALLOW}"})
            resp.headers["Allow"] = self.ALLOW
        else:
            resp = self.metrics.response(self.b)
        return resp(environ, start_response)

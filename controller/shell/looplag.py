"""Event-loop health: how long the app's events wait before they run.

Every EventCall is stamped when it is posted and observed when it runs; a probe posts a no-op
EventCall every PROBE_INTERVAL_S, so the histogram moves even when nobody calls the REST API,
and also observes how late its own hub.sleep woke (a green thread hogging the process delays
everything, the REST API's sockets included, before any event is even queued).
The probe waits in the same queue as packet-ins, switch and OVSDB events, so its wait is what
any event waits. `overlay_event_loop_lag_seconds` is that histogram; while a probe is still
queued, `overlay_event_loop_waiting_seconds` says for how long, so a loop that is stuck (and
so observes nothing) still shows on /metrics. `overlay_event_loop_errors_total` counts the posted
work that raised (each one is logged with its traceback, controller/shell/loop.py).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

LAG_METRIC = "overlay_event_loop_lag_seconds"
WAITING_METRIC = "overlay_event_loop_waiting_seconds"
ERRORS_METRIC = "overlay_event_loop_errors"  # a counter: exported with _total
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBE_INTERVAL_S = 0.5


class LoopLag:
    """A histogram of event waits plus the probe that keeps it fed; a prometheus_client collector."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.clock = clock
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # per bucket, the last one is +Inf
        self.total = 0.0
        self.probe_posted: float | None = None  # when the probe still queued was posted
        self.errors = 0  # posted work that raised

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.buckets, seconds)] += 1
        self.total += seconds

    def failed(self) -> None:
        """Work posted to the loop raised (and was logged)."""
        self.errors += 1

    def probe(self, post: Callable[[Callable[[], Any]], Any]) -> None:
        """Post one no-op event, unless the last one is still waiting (then it only grows older)."""
        if self.probe_posted is not None:
            return
        self.probe_posted = self.clock()
        post(self._probe_ran)

    def _probe_ran(self) -> None:
        self.probe_posted = None

    def waiting(self) -> float:
        return 0.0 if self.probe_posted is None else max(0.0, self.clock() - self.probe_posted)

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        h = HistogramMetricFamily(LAG_METRIC, "how long events waited on the controller's event loop "
                                  "before they ran (REST calls, OVSDB updates, a probe every "
                                  f"{PROBE_INTERVAL_S:g} s), and how late the probe woke from sleep",
                                  buckets=buckets, sum_value=self.total)
        yield h
        g = GaugeMetricFamily(WAITING_METRIC, "how long the event-loop probe queued now has waited "
                              "(0 when none is queued): grows while the loop is stuck")
        g.add_metric([], self.waiting())
        yield g
        c = CounterMetricFamily(ERRORS_METRIC, "work posted to the event loop that raised (each logged "
                                "with its traceback): a tick, an OVSDB update, a reload, a BGP update")
        c.add_metric([], self.errors)
        yield c


def run_probe(lag: LoopLag, post: Callable[[Callable[[], Any]], Any]) -> None:
    """The probe's green thread (apps/overlay.py spawns it)."""
    from os_ken.lib import hub

    while True:
        lag.probe(post)
        start = lag.clock()
        hub.sleep(PROBE_INTERVAL_S)
        lag.observe(max(0.0, lag.clock() - start - PROBE_INTERVAL_S))  # woken late: the hub was hogged

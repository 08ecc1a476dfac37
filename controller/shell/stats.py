"""The switches' counters: one cookie-masked aggregate request per counted role and switch, never
a flow dump, every interval (or slower with many switches); the replies are folded into the core.

While the controller converges (Pump.converging), each batch of a round waits, up to MAX_DEFER
intervals: counters are for metrics, and at 1,000 hosts a round's requests and replies cost
about a tenth of a core that learning needs more (bench/scale.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from os_ken.lib import hub

from controller.core.counters import ROLE_COUNTERS
from controller.southbound import ofmsg

POLL_RATE = 500  # counter requests per second at most (one per counted role and switch)
POLL_EVERY = 50  # switches polled between pauses
MAX_DEFER = 5  # intervals a batch of a round may wait for the controller to converge
BUSY_RECHECK_S = 0.25


class StatsPoller:
    def __init__(self, datapaths: Mapping[int, Any], interval: float,
                 sleep: Callable[[float], None] = hub.sleep, busy: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.datapaths = datapaths
        self.interval = interval
        self.sleep = sleep
        self.busy = busy  # is the controller converging (work in the pump)?
        self.clock = clock
        self.deferred = 0  # batches of a round that waited for the controller
        self.polls: dict[tuple[int, int], int] = {}  # (dpid, xid) -> role asked for

    def run(self) -> None:
        """Every interval, or slower with many switches: about POLL_RATE requests a second at most (a
        request and its reply cost some 50 us with dispatch: 1,000 hosts every 2 s, a sixth of a core)."""
        while True:
            self.sleep(self.interval)
            self.poll(defer=True)

    def wait_while_busy(self, until: float) -> None:
        """Let a converging controller finish first, but read the counters by `until` anyway."""
        waited = False
        while self.busy() and self.clock() < until:
            waited = True
            self.sleep(min(BUSY_RECHECK_S, self.interval))
        self.deferred += waited

    def poll(self, defer: bool = False) -> None:
        """One round: every switch asked, POLL_EVERY at a time; with `defer`, each batch first waits
        while the controller converges, up to MAX_DEFER intervals (a round at 1,000 hosts spans
        seconds, a cold start tens of them)."""
        dps = list(self.datapaths.values())
        for i, dp in enumerate(dps):
            if defer and i % POLL_EVERY == 0:
                self.wait_while_busy(self.clock() + MAX_DEFER * self.interval)
            for role in ROLE_COUNTERS:
                req = ofmsg.role_stats_request(role)
                dp.set_xid(req)
                self.polls[(dp.id, req.xid)] = role
                dp.send_msg(req)
            if i % POLL_EVERY == POLL_EVERY - 1 and i + 1 < len(dps):
                self.sleep(POLL_EVERY * len(ROLE_COUNTERS) / POLL_RATE)

    def replied(self, dpid: int, xid: int) -> int | None:
        """The role an aggregate reply counts (None: not one we asked for)."""
        return self.polls.pop((dpid, xid), None)

    def gone(self, dpid: int) -> None:
        self.polls = {k: role for k, role in self.polls.items() if k[0] != dpid}

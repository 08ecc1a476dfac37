"""The app's event loop: functions posted to it (EventCall), the pump that drains the core's dirty
work in slices, and the ticker (time passing, and the garbage collector kept out of the way)."""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from os_ken.controller import event
from os_ken.lib import hub

from controller.core.core import Core
from controller.northbound.metrics import Metrics
from controller.shell.looplag import LoopLag
from controller.shell.sender import Sender
from controller.shell.turns import TURN_S

LOG = logging.getLogger(__name__)
SLICE_S = TURN_S  # recomputation per slice, then its sending (which lets go between switches when the turn is over)
CALM_S = 0.5  # converging: the pump had work this recently
TICK_S = 1.0
GC_THRESHOLDS = (10_000, 20, 1000)
FREEZE_S = 0.25


class EventCall(event.EventBase):
    """A function to run on the app's event loop, with a place for its result."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.posted = time.monotonic()  # its wait in the queue feeds looplag
        self.done = hub.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self, lag: LoopLag) -> None:
        """Run the function; one that raises is logged here, once, with its traceback, and counted
        (overlay_event_loop_errors_total): nobody else would see it. The loop goes on."""
        lag.observe(time.monotonic() - self.posted)
        try:
            self.result = self.fn()
        except Exception as e:
            self.error = e  # for a caller that waits on done
            lag.failed()
            LOG.exception("work posted to the event loop failed (%s)", _name(self.fn))
        self.done.set()


def _name(fn: Callable[[], Any]) -> str:
    """What the failed work was, as far as the function says (a lambda says where it was made)."""
    code = getattr(fn, "__code__", None)
    where = f" at {code.co_filename}:{code.co_firstlineno}" if code is not None else ""
    return f"{getattr(fn, '__qualname__', repr(fn))}{where}"


class Pump:
    """Drains the core's dirty work in slices, letting other events run between them."""

    def __init__(self, core: Callable[[], Core], apply: Callable[..., None], sender: Sender,
                 metrics: Metrics) -> None:
        self.core = core  # the current one: a takeover replaces it
        self.apply = apply
        self.sender = sender
        self.metrics = metrics
        self.work = hub.Event()
        self.done_at = -CALM_S  # when the pump last ran out of work (monotonic)

    def wake(self) -> None:
        self.work.set()

    def converging(self) -> bool:
        """Work to drain, or drained moments ago: events keep coming (the stats poll waits for calm)."""
        return self.core().pending() or time.monotonic() - self.done_at < CALM_S

    def run(self) -> None:
        while True:
            self.work.wait()
            self.work.clear()
            started = time.perf_counter()
            while self.core().pending():
                self.apply(self.core().drain(SLICE_S), hold=True)  # sent a few slices at a time
                self.sender.let_go()
            self.sender.flush()
            self.done_at = time.monotonic()
            self.metrics.reconciled(time.perf_counter() - started)


def ticker(post_tick: Callable[[], Any]) -> None:
    """Posts a tick every TICK_S; between, keeps the collector's work small (freeze_survivors)."""
    gc.set_threshold(*GC_THRESHOLDS)
    for n in itertools.count(1):
        hub.sleep(FREEZE_S)
        freeze_survivors()
        if n % round(TICK_S / FREEZE_S) == 0:
            post_tick()


BUSY_YOUNG_COLLECTIONS = 2  # more in one FREEZE_S: the state grows fast (cold start, mass learning)


def freeze_survivors() -> int:
    """Every FREEZE_S: collect the young generations, then freeze what survived.

    The state is millions of long-lived, acyclic objects: a full collection over them would
    stall the loop for a second. What survived a quarter of a second is moved out of the
    collector's sight (gc.freeze), so that no collection has much to go through: at 1,000 hosts
    converging, freezing once a second, a young collection took up to 77 ms (50,000 allocations)
    and a middle one up to 130 ms.

    A frozen object is never collected again, so garbage must not be frozen: a REST request
    leaves cycles behind (eventlet's HTTP protocol and its socket files, the JSON encoder's
    closures; about 80 objects each) that only the collector frees, and freezing them every
    quarter of a second, before a young collection came, kept them all (24,763 objects in the
    first 15 s of the 100-host benchmark). So the young and middle generations are collected
    first: they hold what the last quarter of a second made.

    Except while the state grows fast (more than BUSY_YOUNG_COLLECTIONS young collections since
    the last freeze, each after 10,000 more objects): then the middle generation is hundreds of
    thousands of new objects of the core's, going through them took 20 ms a time at 1,000 hosts
    learning (up to 61 ms), and only the youngest is collected. Garbage that already survived a
    young collection is then kept, for as long as the burst lasts (docs/operator/operations.md,
    Memory). What is alive when frozen and becomes cyclic garbage later (a request that
    straddles a freeze, a closed switch connection) is kept too. How many objects the
    collection found unreachable."""
    found = gc.collect(0 if gc.get_count()[1] > BUSY_YOUNG_COLLECTIONS else 1)
    gc.freeze()
    return found

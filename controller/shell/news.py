"""The app's events out to GET /v1/events (controller/northbound/events.py): the core's own
(Core.take_events, at every apply), and what only the shell sees: a revision a switch's barrier
reply confirmed, a change of leader, the counters moving (looked at every tick). Also which
revision each switch holds, for GET /v1/status and the metrics: the core's computation confirmed
by the sender's ledger (controller/southbound/revisions.py)."""

from __future__ import annotations

from collections.abc import Iterable

from controller.core.core import Core
from controller.model import events as ev
from controller.model.ops import Op
from controller.northbound.events import EventHub
from controller.southbound.revisions import RevisionLedger


class News:
    def __init__(self, hub: EventHub, ledger: RevisionLedger) -> None:
        self.hub = hub
        self.ledger = ledger
        self.announced: dict[str, int] = {}  # host -> the revision last announced as applied there
        self.counted: dict[str, int] = {}  # the counters as last announced

    def from_core(self, core: Core) -> None:
        events = core.take_events()
        if events:
            self.hub.publish(events)

    @staticmethod
    def batch_revisions(core: Core, ops: Iterable[Op]) -> dict[int, int | None]:
        """Per switch the operations go to, the revision the core has computed for it: taken
        before the batch may wait its turn to be sent (revisions.py says why)."""
        out: dict[int, int | None] = {}
        for op in ops:
            dpid = getattr(op, "dpid", None)
            if dpid is not None and dpid not in out:
                host = core.host_of_dpid(dpid)
                out[dpid] = core.read.computed_for(host)[0] if host is not None else None
        return out

    def holds(self, dpid: int, computed: int | None) -> int | None:
        return self.ledger.holds(dpid, computed)

    def barrier_replied(self, core: Core, dpid: int) -> None:
        """A switch answered a barrier: announce the revision it holds now, if newer."""
        host = core.host_of_dpid(dpid)
        if host is None:
            return
        held = self.ledger.holds(dpid, core.read.computed_for(host)[0])
        if held is not None and held > self.announced.get(host.id, -1):
            self.announced[host.id] = held
            self.hub.publish([ev.RevisionApplied(host.id, held)])

    def leader(self, status: dict) -> None:
        self.hub.publish([ev.LeaderChanged(status.get("leader"), status.get("generation", 0),
                                           status.get("role", "leader"))])

    def tick(self, core: Core) -> None:
        """At most once a tick: the counters that moved since the last time."""
        changed = {k: v for k, v in core.counters.items() if self.counted.get(k) != v}
        if changed:
            self.counted.update(changed)
            self.hub.publish([ev.CountersChanged(dict(sorted(changed.items())))])

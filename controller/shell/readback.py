"""Reading a switch back after it connects: its flow, group and meter replies, gathered until all
three are in (then the core reconciles it), or given up after READ_TIMEOUT_S (then it is wiped and
refilled)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from controller.core.switch_state import SwitchDump

LOG = logging.getLogger("overlay")
READ_TIMEOUT_S = 10.0  # a switch that has not been read back by then is wiped and refilled
PARTS = ("flows", "groups", "meters")


class _Reading:
    """A switch's read-back in progress: flow, group and meter replies still to come."""

    def __init__(self, since: float) -> None:
        self.since = since
        self.dump = SwitchDump()
        self.waiting = set(PARTS)


class ReadBack:
    def __init__(self) -> None:
        self.reading: dict[int, _Reading] = {}  # switches being read back

    def start(self, dpid: int, now: float) -> None:
        self.reading[dpid] = _Reading(now)

    def gone(self, dpid: int) -> None:
        self.reading.pop(dpid, None)

    def part(self, dpid: int, part: str, fill: Callable[[SwitchDump], None], more: bool) -> SwitchDump | None:
        """One reply of a read-back: the whole dump once it was the last one, else None."""
        reading = self.reading.get(dpid)
        if reading is None:
            return None
        fill(reading.dump)
        if more:
            return None
        reading.waiting.discard(part)
        if reading.waiting:
            return None
        del self.reading[dpid]
        LOG.info("switch %016x read back: %d flows, %d groups, %d meters", dpid, len(reading.dump.flows),
                 len(reading.dump.groups), len(reading.dump.meters))
        return reading.dump

    def overdue(self, now: float) -> Iterator[int]:
        """Switches not read back in READ_TIMEOUT_S: each is forgotten here as it is handed out."""
        for dpid, reading in list(self.reading.items()):
            if now - reading.since > READ_TIMEOUT_S:
                LOG.warning("switch %016x: could not read back its flows in %.0f s: wiping it", dpid,
                            READ_TIMEOUT_S)
                del self.reading[dpid]
                yield dpid


def add_flows(dump: SwitchDump, body: Iterable[Any]) -> None:
    """Flow stats as the switch wrote them: key -> cookie."""
    for s in body:
        dump.flows[(s.table_id, s.priority, tuple(sorted(s.match.items())))] = s.cookie


def add_groups(dump: SwitchDump, body: Iterable[Any]) -> None:
    dump.groups.update(g.group_id for g in body)


def add_meters(dump: SwitchDump, body: Iterable[Any]) -> None:
    dump.meters.update(m.meter_id for m in body)

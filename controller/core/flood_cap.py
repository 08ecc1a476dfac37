"""The learning cap: at most max_endpoints learned per (host, tenant), and what a (host, tenant) at
its cap floods. Every piece of the cap's state is here: the frames refused, when that was last
logged, which (host, tenant)s are counted anew, and how far each has gone toward flooding only the
sources it learned.

A VM spraying random source MACs reaches max_endpoints at once; past it, each new MAC would
still be flooded to every host of its tenant, where the hosts' own VM bridges (NORMAL, MAC
learning) learn it and revalidate every datapath flow: on a userspace datapath that stalls the
thread that also reads the underlay, and other tenants' packets are dropped there
(docs/operator/operations.md). So at the cap, the host's flood carries only its learned sources
(pipeline.tenant_flows, pipeline.endpoint_flows), until the count falls below it again.

The change is made in two steps, each once the host's previous changes are out, so no learned
source is ever without a flood: capping adds the sources' own flood entries, then narrows the
tenant's; uncapping widens the tenant's, then removes the sources' own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container, Iterable

from controller.core.index import Flip, Index
from controller.core.parts import Part
from controller.model.state import Tenant

LOG = logging.getLogger("controller.core.learning")  # where the learner logged it before
CAP_LOG_INTERVAL_S = 60.0


class LearningCap:
    def __init__(self, limit: int) -> None:
        self.limit = limit  # [overlay] max_endpoints
        self.refused: dict[Flip, int] = {}  # (vni, host) at the cap -> frames refused since it got there
        self._logged: dict[Flip, float] = {}
        self.sources: set[Flip] = set()  # (vni, host) whose learned sources have their own flood entries
        self.narrowed: set[Flip] = set()  # (vni, host) whose tenant flood entry drops the rest
        self._moving: set[Flip] = set()  # counted anew, not settled yet

    def recounted(self, spot: Flip) -> None:
        """The index's endpoint count of (vni, host) changed."""
        self._moving.add(spot)

    def retuned(self, limit: int, counted: Iterable[Flip]) -> None:
        self.limit = limit
        self._moving.update(counted)

    def admits(self, tenant: Tenant, host_id: str, count: int, now: float, counters: Counter[str]) -> bool:
        """May one more endpoint be learned in the tenant on the host, which has `count`?"""
        spot = (tenant.vni, host_id)
        if count < self.limit:
            self.refused.pop(spot, None)
            return True
        self.refused[spot] = self.refused.get(spot, 0) + 1
        counters["learning_capped"] += 1
        if now - self._logged.get(spot, -CAP_LOG_INTERVAL_S) >= CAP_LOG_INTERVAL_S:
            self._logged[spot] = now
            LOG.warning("tenant %s on host %s reached %d endpoints: learning no more there "
                        "(%d frames refused so far)", tenant.name, host_id, self.limit, self.refused[spot])
        return False

    def pending(self) -> bool:
        return bool(self._moving)

    def step(self, ix: Index, busy: Container[str]) -> list[tuple[str, list[Part]]]:
        """The next step of each (host, tenant) whose count crossed the cap, for hosts not busy
        with earlier changes: (host, the partitions to recompute there)."""
        marks: list[tuple[str, list[Part]]] = []
        # Walked from a new set each time: a set never shrinks, and walking one goes through every
        # slot it ever had. Learning 27,597 endpoints at 1,000 hosts leaves 26,000 spots to settle
        # in one step; walking what was left of them (one spot) then took 0.38 ms in every drain,
        # a sixth of the controller's CPU for one more VM.
        moving, self._moving = self._moving, set()
        for spot in moving:
            vni, host_id = spot
            if host_id in busy:
                self._moving.add(spot)
                continue
            capped = ix.ep_count.get(spot, 0) >= self.limit
            if capped and spot not in self.sources:
                self.sources.add(spot)
            elif capped and spot not in self.narrowed:
                self.narrowed.add(spot)
                marks.append((host_id, [vni]))
                self._moving.add(spot)
                continue
            elif not capped and spot in self.narrowed:
                self.narrowed.discard(spot)
                marks.append((host_id, [vni]))
                self._moving.add(spot)
                continue
            elif not capped and spot in self.sources:
                self.sources.discard(spot)
            else:
                continue  # settled
            self._moving.add(spot)
            marks.append((host_id, [k for k in ix.eps_by_host.get(host_id, ()) if k[0] == vni]))
        return marks

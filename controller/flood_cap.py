"""Which (host, tenant) floods only for the sources it learned: those at their learning cap.

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

from collections.abc import Container

from controller.index import EpKey, Flip, Index


class FloodCaps:
    def __init__(self) -> None:
        self.sources: set[Flip] = set()  # (vni, host) whose learned sources have their own flood entries
        self.narrowed: set[Flip] = set()  # (vni, host) whose tenant flood entry drops the rest
        self._moving: set[Flip] = set()  # counted anew, not settled yet

    def pending(self, ix: Index) -> bool:
        return bool(ix.recounted or self._moving)

    def step(self, ix: Index, cap: int, busy: Container[str]) -> list[tuple[str, list[int | EpKey]]]:
        """The next step of each (host, tenant) whose count crossed the cap, for hosts not busy
        with earlier changes: (host, the partitions to recompute there)."""
        self._moving |= ix.recounted
        ix.recounted.clear()
        marks: list[tuple[str, list[int | EpKey]]] = []
        for spot in list(self._moving):
            vni, host_id = spot
            if host_id in busy:
                continue
            capped = ix.ep_count.get(spot, 0) >= cap
            if capped and spot not in self.sources:
                self.sources.add(spot)
            elif capped and spot not in self.narrowed:
                self.narrowed.add(spot)
                marks.append((host_id, [vni]))
                continue
            elif not capped and spot in self.narrowed:
                self.narrowed.discard(spot)
                marks.append((host_id, [vni]))
                continue
            elif not capped and spot in self.sources:
                self.sources.discard(spot)
            else:
                self._moving.discard(spot)
                continue
            marks.append((host_id, [k for k in ix.eps_by_host.get(host_id, ()) if k[0] == vni]))
        return marks

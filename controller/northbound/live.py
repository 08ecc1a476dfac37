"""Is a revision live? GET /v1/status?revision=N[&wait=S]: whether every host's switch holds the
flows of revision N of the tenants (barrier-confirmed), naming the hosts that lag and why; with
`wait`, it answers as soon as they all do, or after S seconds with the laggards.

Every write answers with its revision (the X-Overlay-Revision header, controller/northbound/rest.py);
which revision a switch holds is the core's (controller/core/marks.py) confirmed by its barrier
replies (controller/southbound/revisions.py). A revision that changed nothing on a switch counts
there at once. A host whose switch is disconnected, being read back or not joined lags, with
the reason; so does every host when this instance follows another (the leader programs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webob import Request

from controller.core.read_model import ReadModel
from controller.model.revisions import REVISION_HEADER

MAX_WAIT_S = 300.0
RECHECK_S = 1.0  # while waiting: at least this often, even without an event


class BadQuery(ValueError):
    """A query parameter that is not what the route takes."""


def revision_param(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise BadQuery("'revision' must be a non-negative integer (a write's X-Overlay-Revision)")
    return int(text)


def wait_param(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_WAIT_S:  # also NaN
        raise BadQuery(f"'wait' must be a number of seconds from 0 to {MAX_WAIT_S:g}")
    return value


Holds = Callable[[int, int | None], int | None]  # (dpid, the core's revision for it) -> what it holds


def host_revisions(r: ReadModel, holds: Holds) -> dict[str, tuple[int | None, str | None]]:
    """host -> (the revision its switch holds, None) or (None or what it holds, why not more)."""
    out = {}
    for host_id in sorted(r.hosts):
        host = r.hosts[host_id]
        computed, reason = r.computed_for(host)
        dpid = host.view.datapath_id
        held = holds(dpid, computed) if dpid is not None and computed is not None else None
        if held is None and reason is None:
            reason = "waiting for its switch to confirm (barrier reply)"
        out[host_id] = (held, reason)
    return out


def status_json(r: ReadModel, holds: Holds, asked: int | None, role: dict) -> dict:
    current = r.revision
    want = current if asked is None else asked
    lagging, holding = [], 0
    per_host = host_revisions(r, holds)
    for host_id, (held, reason) in per_host.items():
        if held is not None and held >= want:
            holding += 1
        else:
            lagging.append({"host": host_id, "revision": held,
                            "reason": reason or f"holds revision {held}; its switch has not confirmed {want} yet"})
    reason = None
    if role.get("role") == "follower":
        leader = role.get("leader") or "unknown"
        reason = f"this instance follows (the leader, {leader}, programs the switches): ask the leader"
    elif want > current:
        reason = f"this controller holds revision {current}: {want} is newer (written on another instance?)"
    elif lagging:
        reason = f"{len(lagging)} of {len(per_host)} hosts do not hold revision {want} yet"
    return {"revision": current, "asked": want, "live": reason is None, "reason": reason,
            "hosts": len(per_host), "holding": holding, "lagging": lagging}


class LiveView:
    """GET /v1/status, mixed into rest.Api (which routes, authenticates and counts it)."""

    b: Any  # rest.Backend

    def status(self, req: Request) -> tuple[int, Any, dict]:
        try:
            asked = revision_param(req.GET.get("revision"))
            wait = wait_param(req.GET.get("wait"))
        except (BadQuery, UnicodeDecodeError) as e:
            return 400, {"error": str(e) if isinstance(e, BadQuery) else "the query string is not valid UTF-8"}, {}
        events = self.b.event_hub
        deadline = events.monotonic() + wait

        def run() -> dict:
            return status_json(self.b.core.read, self.b.switch_holds, asked, self.b.role_status())
        while True:
            doc = self.b.call(run)
            left = deadline - events.monotonic()
            if doc["live"] or left <= 0:
                return 200, doc, {REVISION_HEADER: str(doc["revision"])}
            # Anything that may make it live is an event (a confirmed revision, a host back, a
            # tenant changed); a switch programmed without writes is not, hence the recheck.
            events.wait_change(min(left, RECHECK_S))

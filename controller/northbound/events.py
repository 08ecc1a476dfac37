"""GET /v1/events: what changes, as Server-Sent Events (docs/reference/events.md).

The core and the shell make the events as values (controller/model/events.py); `EventHub.publish`
is called on the app's event loop and only appends: to a ring of the last RING_SIZE events (what
a client resumes from) and to each client's own bounded queue. A client's green thread writes its
queue to its socket; a slow client never holds the loop up: when its queue is full it is emptied
and the client gets a `reset` event (read the state again), as does one that resumes from an ID
the ring no longer holds. IDs are "<epoch>-<n>": a restarted controller has another epoch, so an
ID from before the restart resumes nothing and gets a reset too.

Without `Accept: text/event-stream` the same route answers at once with the events held after
Last-Event-ID (or `since`) as JSON, JSON_PAGE at a time: a script catches up without holding a
connection. Long answers are written a batch at a time, the event loop let go between them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from os_ken.lib import hub
from webob import Request, Response

from controller.model import events as ev

RING_SIZE = 10_000  # events a client can resume from
QUEUE_SIZE = 2_000  # events a client may be behind before it is reset
MAX_CLIENTS = 64  # streams open at once (each holds a green thread and a socket)
KEEPALIVE_S = 15.0  # a comment line this often: proxies keep the stream, a dead client is found
COALESCE_S = 0.05  # a waiter woken by an event waits this much more: a burst costs one look
JSON_PAGE = 1_000  # events in one JSON answer (then "more": ask again from its last_id)
WRITE_BATCH = 200  # events encoded between two turns of the event loop (a resume may replay thousands)
RETRY_MS = 1000  # what an EventSource waits before it reconnects


@dataclass(frozen=True)
class Item:
    seq: int
    event: ev.Event
    at: float

    def doc(self, epoch: str) -> dict:
        return {"id": f"{epoch}-{self.seq}", "kind": self.event.kind, "at": round(self.at, 3),
                **self.event.to_json()}


def sse(doc: dict) -> bytes:
    """One event in the text/event-stream format."""
    return f"id: {doc['id']}\nevent: {doc['kind']}\ndata: {json.dumps(doc, separators=(',', ':'))}\n\n".encode()


class Pulse:
    """Wakes every green thread waiting at each beat (a hub.Event, once set, stays set)."""

    def __init__(self) -> None:
        self._ev = hub.Event()

    def beat(self) -> None:
        ev, self._ev = self._ev, hub.Event()
        ev.set()

    def wait(self, timeout: float) -> None:
        self._ev.wait(timeout)


class Subscriber:
    """One client's queue: filled on the event loop, emptied by the client's green thread."""

    def __init__(self, kinds: frozenset[str] | None, limit: int) -> None:
        self.kinds = kinds
        self.limit = limit
        self.queue: deque[Item] = deque()
        self.lost: str | None = None  # why events were dropped: a reset is due
        self.wake = hub.Event()

    def offer(self, item: Item) -> None:
        if self.kinds is not None and item.event.kind not in self.kinds:
            return
        if len(self.queue) >= self.limit:
            self.queue.clear()
            self.lost = f"this client fell {self.limit} events behind: they were dropped"
        else:
            self.queue.append(item)
        self.wake.set()

    def take(self, timeout: float) -> list[Item] | None:
        """The queued events (None: none came within timeout)."""
        if not self.queue and self.lost is None:
            self.wake.wait(timeout)
        self.wake.clear()
        if not self.queue and self.lost is None:
            return None
        out = list(self.queue)
        self.queue.clear()
        return out


class EventHub:
    def __init__(self, clock: Callable[[], float] = time.time, ring: int = RING_SIZE, queue: int = QUEUE_SIZE,
                 max_clients: int = MAX_CLIENTS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # wall-clock time, for the events' "at"
        self.monotonic = monotonic  # for deadlines (wait_change)
        self.epoch = uuid.uuid4().hex[:8]
        self.seq = 0
        self.ring: deque[Item] = deque(maxlen=ring)
        self.queue = queue
        self.max_clients = max_clients
        self.clients: set[Subscriber] = set()
        self.changed = Pulse()  # beats at every publish: GET /v1/status?wait= rechecks on it

    # ---- on the event loop ---------------------------------------------------------------

    def publish(self, events: Iterable[ev.Event]) -> None:
        now = None
        for event in events:
            now = self.clock() if now is None else now
            self.seq += 1
            item = Item(self.seq, event, now)
            self.ring.append(item)
            for client in self.clients:
                client.offer(item)
        if now is not None:
            self.changed.beat()

    # ---- in a client's green thread ----------------------------------------------------------

    def wait_change(self, timeout: float) -> None:
        """Until something is published (then a little more: a burst costs one look), or timeout."""
        self.changed.wait(timeout)
        hub.sleep(COALESCE_S)

    def last_id(self) -> str:
        return f"{self.epoch}-{self.seq}"

    def before_ring(self) -> str:
        """The ID just before the oldest event held: since() it gives them all."""
        oldest = self.ring[0].seq if self.ring else self.seq + 1
        return f"{self.epoch}-{oldest - 1}"

    def since(self, last_id: str | None, kinds: frozenset[str] | None) -> tuple[list[dict], str | None]:
        """(the events held after last_id, why some are missing: None when none are). No
        last_id: none (a stream starts now; a JSON read asks for `since` to get the ring)."""
        reset = None
        if last_id is None:
            return [], None
        epoch, _, n = last_id.partition("-")
        oldest = self.ring[0].seq if self.ring else self.seq + 1
        if epoch != self.epoch or not n.isdigit() or int(n) > self.seq:
            start, reset = oldest, f"event ID {last_id!r} is not of this controller's stream (restarted?)"
        elif int(n) + 1 < oldest:
            start, reset = oldest, f"the events after {last_id} are no longer held (the last {len(self.ring)} are)"
        else:
            start = int(n) + 1
        skip = start - oldest
        held = [it for i, it in enumerate(self.ring) if i >= skip]
        return [it.doc(self.epoch) for it in held if kinds is None or it.event.kind in kinds], reset

    def subscribe(self, kinds: frozenset[str] | None) -> Subscriber | None:
        """A client's queue from now on (None: too many clients)."""
        if len(self.clients) >= self.max_clients:
            return None
        client = Subscriber(kinds, self.queue)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Subscriber) -> None:
        self.clients.discard(client)

    def reset_doc(self, reason: str) -> dict:
        """A reset event, with the ID of the last event published: resuming from it continues."""
        return {"id": self.last_id(), "kind": ev.Reset.kind, "at": round(self.clock(), 3), "reason": reason}

    def stream(self, client: Subscriber, backlog: list[dict], reset: str | None,
               keepalive_s: float = KEEPALIVE_S) -> Iterator[bytes]:
        """The text/event-stream body: a reset if due, the backlog, then events as they come."""
        try:
            yield f"retry: {RETRY_MS}\n: {self.last_id()}\n\n".encode()
            if reset is not None:
                yield sse(self.reset_doc(reset))
            for start in range(0, len(backlog), WRITE_BATCH):
                yield b"".join(sse(doc) for doc in backlog[start:start + WRITE_BATCH])
                hub.sleep(0)
            while True:
                items = client.take(keepalive_s)
                if client.lost is not None:
                    lost, client.lost = client.lost, None
                    yield sse(self.reset_doc(lost))
                if items is None:
                    yield b": keepalive\n\n"
                    continue
                for start in range(0, len(items), WRITE_BATCH):
                    yield b"".join(sse(it.doc(self.epoch)) for it in items[start:start + WRITE_BATCH])
                    hub.sleep(0)
        finally:
            self.unsubscribe(client)


def kinds_param(text: str | None) -> frozenset[str] | None:
    """?kinds=a,b: only those (ValueError names an unknown one); None: every kind."""
    if not text:
        return None
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(kinds - set(ev.KINDS))
    if unknown:
        raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; kinds: {', '.join(ev.KINDS)}")
    return kinds or None


def wants_stream(accept: Any) -> bool:
    """Does the request ask for the stream (EventSource and overlayctl events send this)?"""
    return "text/event-stream" in str(accept or "")


class EventsView:
    """GET /v1/events, mixed into rest.Api (which routes, authenticates and counts it)."""

    b: Any  # rest.Backend: b.event_hub is the app's EventHub

    def events(self, req: Request) -> Response | tuple[int, Any]:
        events: EventHub = self.b.event_hub
        try:
            kinds = kinds_param(req.GET.get("kinds"))
            last = req.headers.get("Last-Event-ID") or req.GET.get("since")
        except UnicodeDecodeError:
            return 400, {"error": "the query string is not valid UTF-8"}
        except ValueError as e:
            return 400, {"error": str(e)}
        if not wants_stream(req.accept):  # a script catching up: what is held, at once, a page at a time
            docs, reset = events.since(last or events.before_ring(), kinds)
            more = len(docs) > JSON_PAGE
            docs = docs[:JSON_PAGE]
            return 200, {"events": docs, "last_id": docs[-1]["id"] if more else events.last_id(),
                         "more": more, "reset": reset}
        if req.method == "HEAD":
            return Response(status=200, content_type="text/event-stream")
        client = events.subscribe(kinds)  # first: nothing published from here on is missed
        if client is None:
            return 503, {"error": f"{events.max_clients} event streams are open already; try again later"}
        backlog, reset = events.since(last, kinds) if last else ([], None)
        resp = Response(status=200, content_type="text/event-stream", charset=None,
                        app_iter=events.stream(client, backlog, reset))
        resp.headers["Cache-Control"] = "no-cache"
        resp.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold events back
        req.environ["eventlet.minimum_write_chunk_size"] = 0  # each event out as it comes
        return resp

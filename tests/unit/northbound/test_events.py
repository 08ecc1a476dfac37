"""The event stream: the core's events as values, the hub's ring (resume, reset), a slow client that
is reset instead of holding anyone up, the SSE body and the JSON catch-up, GET /v1/events."""

from dataclasses import replace

import pytest
from webob import Request

from controller.core.changes import Forgotten, Learned, Moved
from controller.core.parts import EpKey
from controller.model import events as ev
from controller.model.state import Endpoint, Tenant
from controller.northbound import events as events_module
from controller.northbound.events import EventHub, kinds_param, sse
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, seeded
from tests.unit.world import view, world


def test_the_core_says_what_changed_as_values():
    core = world(2)
    events = core.take_events()
    assert [e.kind for e in events] == ["host_joined", "host_joined"] and core.take_events() == []
    core.change_tenants({"green": Tenant("green", 5003, 30), "red": None, "blue": Tenant("blue", 5001, 11)}, 7)
    assert core.take_events() == [ev.TenantChanged("blue", "changed", 7), ev.TenantChanged("green", "created", 7),
                                  ev.TenantChanged("red", "deleted", 7)]
    core.learn([Learned(Endpoint(5001, "02:00:00:00:00:01", "h1", 11, 1.0))], 1.0)
    core.learn([Moved(EpKey(5001, "02:00:00:00:00:01"), "h2", 11)], 2.0)
    core.learn([Forgotten(EpKey(5001, "02:00:00:00:00:01"))], 3.0)
    assert core.take_events() == [
        ev.EndpointLearned("blue", 5001, "02:00:00:00:00:01", "h1"),
        ev.EndpointMoved("blue", 5001, "02:00:00:00:00:01", "h2", "h1"),
        ev.EndpointForgotten("blue", 5001, "02:00:00:00:00:01", "h2", "withdrawn by the peer that advertised it")]
    core.host_view(replace(view(1, [2]), problems=("no overlay ip",)), 4.0)
    core.host_view(view(1, [2]), 5.0)
    core.ovsdb_down("h2", 6.0)
    core.ovsdb_down("h2", 6.5)  # once
    assert core.take_events() == [ev.HostRefused("h1", "no overlay ip"), ev.HostJoined("h1", "10.99.0.1"),
                                  ev.HostLeft("h2", "its OVSDB connection closed")]


def test_a_client_resumes_after_the_last_id_it_saw_and_gets_a_reset_when_that_is_gone():
    hub = EventHub(clock=lambda: 1.0, ring=3)
    hub.publish([ev.HostLeft(f"h{i}", "x") for i in range(5)])  # 1..5; the ring holds 3..5
    e = hub.epoch
    docs, reset = hub.since(f"{e}-3", None)
    assert [d["id"] for d in docs] == [f"{e}-4", f"{e}-5"] and reset is None
    assert hub.since(f"{e}-2", None)[1] is None  # 2 is just before the ring: nothing is missing
    docs, reset = hub.since(f"{e}-1", None)
    assert [d["id"] for d in docs] == [f"{e}-3", f"{e}-4", f"{e}-5"] and "no longer held" in reset
    docs, reset = hub.since("other-3", None)
    assert len(docs) == 3 and "restarted" in reset
    docs, reset = hub.since(f"{e}-9", None)
    assert reset is not None  # from the future: not this stream
    assert hub.since(f"{e}-5", None) == ([], None)
    assert [d["host"] for d in hub.since(hub.before_ring(), frozenset({"host_left"}))[0]] == ["h2", "h3", "h4"]


def test_a_slow_client_is_reset_and_never_holds_the_publisher():
    hub = EventHub(clock=lambda: 1.0, queue=2)
    slow, fast = hub.subscribe(None), hub.subscribe(frozenset({"tenant_changed"}))
    hub.publish([ev.HostLeft("h1", "x"), ev.HostLeft("h2", "x"), ev.HostLeft("h3", "x")])  # the third overflows
    assert slow.lost is not None and list(slow.queue) == []
    assert fast.take(0) is None  # filtered out: nothing for it
    hub.publish([ev.TenantChanged("t", "created", 1)])
    assert [it.event.tenant for it in fast.take(0)] == ["t"]
    body = hub.stream(slow, [], None, keepalive_s=0)
    assert next(body).startswith(b"retry: ")
    reset = next(body)
    assert b"event: reset" in reset and b"fell 2 events behind" in reset
    assert b"event: tenant_changed" in next(body)  # and on it goes
    body.close()
    assert slow not in hub.clients  # gone with its stream


def test_the_stream_starts_with_a_reset_then_the_backlog_then_keepalives():
    hub = EventHub(clock=lambda: 2.0)
    hub.publish([ev.HostJoined("h1", "10.0.0.1")])
    client = hub.subscribe(None)
    backlog, reset = hub.since("old-1", None)
    body = hub.stream(client, backlog, reset, keepalive_s=0)
    chunks = [next(body) for _ in range(4)]
    assert chunks[0] == f"retry: 1000\n: {hub.epoch}-1\n\n".encode()
    assert chunks[1].startswith(f"id: {hub.epoch}-1\nevent: reset\n".encode())
    assert chunks[2] == sse(backlog[0]) and b'"host":"h1"' in chunks[2]
    assert chunks[3] == b": keepalive\n\n"
    body.close()


def test_kinds_are_checked():
    assert kinds_param(None) is None and kinds_param("tenant_changed, host_left") == {"tenant_changed", "host_left"}
    with pytest.raises(ValueError, match="unknown event kind"):
        kinds_param("tenant_changed,nope")


@pytest.fixture
def api(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "e.db"))))
    api.b.core.take_events()  # the seeding's: not what these tests look at
    return api


def test_the_route_answers_json_without_the_stream_accept(api):
    call(api, "POST", "/v1/tenants", {"name": "green", "vni": 5003, "vlan": 30})
    status, doc = call(api, "GET", "/v1/events?kinds=tenant_changed")
    assert status == 200 and [(e["tenant"], e["change"]) for e in doc["events"]] == [("green", "created")]
    assert doc["reset"] is None and doc["events"][0]["revision"] == api.b.store.revision
    status, doc = call(api, "GET", f"/v1/events?since={doc['last_id']}")
    assert (status, doc["events"]) == (200, [])
    assert call(api, "GET", "/v1/events?kinds=bogus")[0] == 400


def test_the_route_streams_with_the_stream_accept_and_resumes_from_last_event_id(api):
    call(api, "POST", "/v1/tenants", {"name": "green", "vni": 5003, "vlan": 30})
    first = call(api, "GET", "/v1/events")[1]["events"][0]["id"]
    call(api, "DELETE", "/v1/tenants/green")
    environ = Request.blank("/v1/events", headers={"Accept": "text/event-stream", "Last-Event-ID": first}).environ
    started = []
    body = api(environ, lambda status, headers: started.append((status, dict(headers))))
    chunks = iter(body)
    assert started[0][0] == "200 OK" and started[0][1]["Content-Type"] == "text/event-stream"
    assert environ["eventlet.minimum_write_chunk_size"] == 0
    next(chunks)
    assert b'"change":"deleted"' in next(chunks)
    body.close()
    assert call(api, "HEAD", "/v1/events")[0] == 200


def test_too_many_streams_are_refused(api):
    api.b.event_hub.max_clients = 0
    resp = Request.blank("/v1/events", headers={"Accept": "text/event-stream"}).get_response(api)
    assert resp.status_int == 503 and "streams are open" in resp.json["error"]


def test_json_answers_come_a_page_at_a_time(api, monkeypatch):
    monkeypatch.setattr(events_module, "JSON_PAGE", 2)
    api.b.event_hub.publish([ev.HostLeft(f"h{i}", "x") for i in range(5)])
    seen, since = [], None
    while True:
        doc = call(api, "GET", "/v1/events" + (f"?since={since}" if since else ""))[1]
        seen += [e["host"] for e in doc["events"]]
        if not doc["more"]:
            break
        since = doc["last_id"]
    assert seen == [f"h{i}" for i in range(5)]

"""The REST side of the operator workflows: POST /v1/apply (all or nothing, one revision, a plan),
GET /v1/export, the revision every write answers with, and GET /v1/status (which switches hold it)."""

import json

import pytest
from webob import Request

from controller.model.revisions import REVISION_HEADER
from controller.northbound import declare
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, seeded, state
from tests.unit.world import world

DOC = {"tenants": {"blue": {"vni": 5001, "vlan": 10}, "red": {"vni": 5002, "vlan": 21},
                   "green": {"vni": 5003, "vlan": 30, "hosts": ["host1"]}}}


@pytest.fixture
def api(tmp_path):
    return seeded(Api(Backend(str(tmp_path / "a.db"))))  # blue (5001, 10) and red (5002, 20)


def revision_of(api, method, path, body=None, **headers):
    resp = request(api, method, path, body, headers)
    return resp.status_int, int(resp.headers[REVISION_HEADER])


def request(api, method, path, body=None, headers=None):
    req = Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    return req.get_response(api)


def test_apply_makes_the_tenants_the_documents_in_one_write(api):
    r0 = api.b.store.revision  # seeded: two writes
    status, doc = call(api, "POST", "/v1/apply", DOC)
    assert status == 200 and doc["applied"] and doc["revision"] == api.b.store.revision == r0 + 1
    assert ([t["name"] for t in doc["create"]], [c["name"] for c in doc["change"]], doc["unchanged"]) == (
        ["green"], ["red"], 1)
    assert doc["change"][0]["fields"] == ["vlan"] and doc["kept"] == []
    assert {t.name: t.vlan for t in api.b.store.tenants()} == {"blue": 10, "green": 30, "red": 21}
    assert sorted(api.b.core.tenants) == ["blue", "green", "red"] and api.b.core.read.revision == r0 + 1
    status, export = call(api, "GET", "/v1/export")
    assert status == 200 and export == {"version": 1, **DOC} | {"tenants": {
        "blue": {"vni": 5001, "vlan": 10}, "green": {"vni": 5003, "vlan": 30, "hosts": ["host1"]},
        "red": {"vni": 5002, "vlan": 21}}, "hosts": {}, "ports": {}}
    before = state(api)
    status, again = call(api, "POST", "/v1/apply", export)
    assert status == 200 and not again["applied"] and again["revision"] == r0 + 1 and state(api) == before


def test_dry_run_and_prune(api):
    before, r0 = state(api), api.b.store.revision
    only_blue = {"tenants": {"blue": {"vni": 5001, "vlan": 10}}}
    status, doc = call(api, "POST", "/v1/apply?dry_run=true&prune=true", only_blue)
    assert status == 200 and doc["changes"] and not doc["applied"] and [t["name"] for t in doc["delete"]] == ["red"]
    assert state(api) == before and api.b.store.revision == r0
    status, doc = call(api, "POST", "/v1/apply?prune=1", only_blue)
    assert status == 200 and [t.name for t in api.b.store.tenants()] == ["blue"]
    assert list(api.b.core.tenants) == ["blue"]
    assert call(api, "POST", "/v1/apply?prune=maybe", {})[0] == 400


@pytest.mark.parametrize("doc,status,path", [
    ({"tenants": {**DOC["tenants"], "bad": {"vni": 5009, "vlan": 5000}}}, 400, ["tenants", "bad", "vlan"]),
    ({"tenants": {**DOC["tenants"], "twin": {"vni": 5003, "vlan": 31}}}, 400, ["tenants", "twin", "vni"]),
    ({"tenants": {"green": {"vni": 5001, "vlan": 30}}}, 409, ["tenants", "green", "vni"]),  # blue's, kept
    ({"hosts": {"h7": {}}}, 400, ["hosts", "h7", "admitted"]),
    ({"tenants": {"x": {"vni": 1, "vlan": 1}}, "extra": 1}, 400, ["extra"]),
])
def test_a_bad_tenant_anywhere_changes_nothing(api, doc, status, path):
    before = state(api), api.b.store.revision
    got, body = call(api, "POST", "/v1/apply", doc)
    assert (got, body["path"]) == (status, path)
    assert (state(api), api.b.store.revision) == before


def test_a_large_document_is_taken_and_a_too_large_one_refused(api, monkeypatch):
    doc = {"tenants": {f"t{i:04d}": {"vni": 10_000 + i, "vlan": 100 + i % 3000, "hosts": [f"x{i}"]}
                       for i in range(1500)}}
    status, body = call(api, "POST", "/v1/apply?prune=true", doc)
    assert status == 200 and len(body["create"]) == 1500 and len(api.b.store.tenants()) == 1500
    monkeypatch.setattr(declare, "MAX_DOCUMENT", 1000)
    assert call(api, "POST", "/v1/apply", doc)[0] == 413


def test_every_write_answers_with_its_revision(api):
    r = api.b.store.revision
    assert revision_of(api, "POST", "/v1/tenants", {"name": "g", "vni": 7, "vlan": 7}) == (201, r + 1)
    assert revision_of(api, "PUT", "/v1/tenants/g", {"vni": 8, "vlan": 7}) == (200, r + 2)
    assert revision_of(api, "PUT", "/v1/tenants/g", {"vni": 8, "vlan": 7}) == (200, r + 2)  # unchanged: none made
    assert revision_of(api, "PATCH", "/v1/tenants/g", {"vlan": 9}) == (200, r + 3)
    assert revision_of(api, "DELETE", "/v1/tenants/g") == (204, r + 4)
    assert revision_of(api, "GET", "/v1/tenants") == (200, r + 4)
    assert revision_of(api, "GET", "/v1/export") == (200, r + 4)
    assert revision_of(api, "POST", "/v1/apply?prune=false", {}) == (200, r + 4)


def test_status_says_which_switches_hold_a_revision(tmp_path):
    b = Backend(str(tmp_path / "s.db"))
    b.core = world(3, tenants=())
    api = Api(b)
    call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
    status, doc = call(api, "GET", "/v1/status?revision=1")
    assert status == 200 and doc == {"revision": 1, "asked": 1, "live": True, "reason": None, "hosts": 3,
                                     "holding": 3, "lagging": []}
    b.confirmed[1] = 0  # h1's barrier reply for revision 1 is not in
    b.core.datapath_down(2)
    b.core.datapath_up(3)  # h3 reconnected: being read back
    doc = call(api, "GET", "/v1/status")[1]
    assert not doc["live"] and doc["holding"] == 0 and doc["reason"] == "3 of 3 hosts do not hold revision 1 yet"
    assert [(x["host"], x["revision"], x["reason"]) for x in doc["lagging"]] == [
        ("h1", 0, "holds revision 0; its switch has not confirmed 1 yet"),
        ("h2", None, "disconnected: no OpenFlow connection from its br1"),
        ("h3", None, "being read back (its switch just connected)")]
    assert call(api, "GET", "/v1/status?revision=0")[1]["lagging"][0]["host"] == "h2"  # h1 holds 0
    doc = call(api, "GET", "/v1/status?revision=9")[1]
    assert not doc["live"] and "holds revision 1: 9 is newer" in doc["reason"]
    status, doc = call(api, "GET", "/v1/status?wait=2.5")
    assert status == 200 and not doc["live"] and b.event_hub.waited == pytest.approx(2.5)
    for bad in ("revision=-1", "revision=x", "wait=301", "wait=nan", "wait=-1"):
        assert call(api, "GET", f"/v1/status?{bad}")[0] == 400, bad


def test_a_revision_that_changes_nothing_on_a_switch_counts_there_at_once(tmp_path):
    b = Backend(str(tmp_path / "s.db"))
    b.core = world(3, tenants=(), members={1: frozenset({10}), 2: frozenset(), 3: frozenset()})
    api = Api(b)
    b.confirmed.update({2: 0, 3: 0})  # h2 and h3 would confirm nothing new: nothing is sent to them
    call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10, "hosts": ["h1"]})
    ops_to = {op.dpid for op in b.applied if hasattr(op, "dpid")}
    assert ops_to == {1}
    b.confirmed.clear()  # their ledgers are settled: they hold what the core computed for them
    assert call(api, "GET", "/v1/status?revision=1")[1]["live"]


def test_a_follower_sends_the_operator_to_the_leader(api, monkeypatch):
    monkeypatch.setattr(api.b, "role_status", lambda: {"role": "follower", "leader": "c2"})
    doc = call(api, "GET", "/v1/status")[1]
    assert not doc["live"] and "leader, c2" in doc["reason"]

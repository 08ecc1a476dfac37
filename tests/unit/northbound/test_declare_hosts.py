"""POST /v1/apply and GET /v1/export with the document's host sections (controller/model/host_doc.py):
admissions and port rules planned, written with the tenants in one transaction and one revision,
applied into the core (a waiting host joins, guarded), all or nothing, and exported."""

import pytest
from openapi_schema_validator import OAS30Validator

from controller.core import admission
from controller.core.admission import HostPolicy
from controller.core.store import StoreError
from controller.model.state import HostView, Peer, PortRule, Tenant
from controller.northbound import openapi
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, state

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
DOC = {"tenants": {"blue": {"vni": 5001, "vlan": 10}, "green": {"vni": 5003, "vlan": 30}},
       "hosts": {"host2": {"admitted": True}, "host9": {"admitted": False}},
       "ports": {"host2": {"vm1": {"macs": [MAC1], "ips": ["10.0.0.1"]}}}}


@pytest.fixture
def api(tmp_path):
    """Approval mode: host1 admitted (listed) and joined; host2 connected, waiting for an operator."""
    a = Api(Backend(str(tmp_path / "d.db"), policy=HostPolicy(admission.APPROVE, listed=("host1",))))
    blue = Tenant("blue", 5001, 10)
    a.b.store.put_tenant(blue)
    a.b.core.put_tenant(blue)
    a.b.core.at_revision(a.b.store.revision)
    for i in (1, 2):
        a.b.core.datapath_up(i)
        a.b.core.host_view(HostView(f"host{i}", f"10.99.0.{i}", i, "br", 1, member_vlans=frozenset({10}),
                                    port_vlans=(("vm1", 10),)), 0, Peer(f"10.98.0.{i}:4000{i}"))
    return a


def test_an_apply_admits_rules_and_creates_in_one_write_and_one_revision(api):
    r0 = api.b.store.revision
    assert "host2" in api.b.core.read.waiting
    status, doc = call(api, "POST", "/v1/apply", DOC)
    assert status == 200 and doc["applied"] and doc["revision"] == api.b.store.revision == r0 + 1
    assert api.b.core.read.revision == r0 + 1
    assert [t["name"] for t in doc["create"]] == ["green"]
    assert doc["hosts"]["create"] == [{"host": "host2", "admitted": True}, {"host": "host9", "admitted": False}]
    rule = PortRule("host2", "vm1", frozenset({MAC1}), frozenset({"10.0.0.1"}))
    assert doc["ports"]["create"] == [rule.to_json()]
    # stored, and in the core: host2 joined (guarded from the start), host9 revoked before it ever came
    assert api.b.store.host_records() == ({"host2": True, "host9": False}, [rule])
    assert "host2" in api.b.core.read.hosts and "host2" not in api.b.core.read.waiting
    assert api.b.core.policy.rules_of("host2") == {"vm1": rule} and api.b.core.read.admission("host9")[0] is False
    # twice: nothing to do, no write, no operation
    before, applied = state(api), len(api.b.applied)
    status, again = call(api, "POST", "/v1/apply", DOC)
    assert status == 200 and not again["changes"] and not again["applied"] and again["revision"] == r0 + 1
    assert (again["hosts"]["unchanged"], again["ports"]["unchanged"]) == (2, 1)
    assert state(api) == before and len(api.b.applied) == applied


def test_a_bad_port_rule_changes_neither_tenants_nor_admissions(api):
    before, r0 = state(api), api.b.store.revision
    bad = {**DOC, "ports": {"host2": {"vm1": {"macs": [MAC1]}, "vm2": {"macs": [MAC2], "ips": ["224.0.0.5"]}}}}
    status, body = call(api, "POST", "/v1/apply?prune=true", bad)
    assert (status, body["path"]) == (400, ["ports", "host2", "vm2", "ips", 0]), body
    assert (state(api), api.b.store.revision) == (before, r0)
    assert "host2" in api.b.core.read.waiting


def test_a_change_the_store_refuses_changes_nothing(api, monkeypatch):
    """The store's transaction fails (disk full...): neither the tenants nor the host records moved."""
    def refuse(*args, **kwargs):
        raise StoreError("disk full")
    before = state(api)
    monkeypatch.setattr(api.b.store, "apply", refuse)
    status, _ = call(api, "POST", "/v1/apply", DOC)
    assert status == 503 and state(api) == before


def test_dry_run_and_prune_of_host_records(api):
    call(api, "POST", "/v1/apply", DOC)
    before, r0 = state(api), api.b.store.revision
    doc = {"tenants": DOC["tenants"], "hosts": {"host2": {"admitted": True}}, "ports": {}}
    status, plan = call(api, "POST", "/v1/apply?dry_run=true", doc)
    assert status == 200 and not plan["changes"] and plan["hosts"]["kept"] == ["host9"]
    assert plan["ports"]["kept"] == ["host2/vm1"]
    status, plan = call(api, "POST", "/v1/apply?dry_run=true&prune=true", doc)
    assert status == 200 and plan["changes"] and not plan["applied"]
    assert plan["hosts"]["delete"] == [{"host": "host9", "admitted": False}]
    assert [r["port"] for r in plan["ports"]["delete"]] == ["vm1"]
    assert (state(api), api.b.store.revision) == (before, r0)
    status, done = call(api, "POST", "/v1/apply?prune=true", doc)
    assert status == 200 and done["applied"] and done["revision"] == r0 + 1
    assert api.b.store.host_records() == ({"host2": True}, [])
    assert dict(api.b.core.policy.decisions) == {"host2": True} and api.b.core.policy.rules == {}
    # a revoke in the file takes a joined host out; a file without host sections leaves them alone
    status, _ = call(api, "POST", "/v1/apply", {"hosts": {"host2": {"admitted": False}}})
    assert status == 200 and "host2" in api.b.core.read.waiting
    status, plan = call(api, "POST", "/v1/apply?prune=true&dry_run=true", {"tenants": DOC["tenants"]})
    assert status == 200 and not plan["changes"]


def test_export_writes_the_operators_records_and_reads_back_as_no_change(api):
    call(api, "POST", "/v1/apply", DOC)
    status, export = call(api, "GET", "/v1/export")
    assert status == 200 and export["hosts"] == DOC["hosts"] and export["ports"] == DOC["ports"]
    assert "host1" not in export["hosts"]  # admitted by [overlay] admitted_hosts: the config's, not the store's
    before = state(api)
    status, again = call(api, "POST", "/v1/apply?prune=true", export)
    assert status == 200 and not again["changes"] and state(api) == before


def _inlined(schema):
    """A schema with its $refs to components replaced by what they name (for a validator)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(openapi.SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
        return {k: _inlined(v) for k, v in schema.items()}
    return [_inlined(v) for v in schema] if isinstance(schema, list) else schema


def test_the_document_the_answer_and_the_export_fit_their_openapi_schemas(api):
    document, result = OAS30Validator(_inlined(openapi.SCHEMAS["OverlayDocument"])), \
        OAS30Validator(_inlined(openapi.SCHEMAS["ApplyResult"]))
    document.validate(DOC)
    assert not document.is_valid({**DOC, "ports": {"host2": {"vm1": {"ips": ["10.0.0.1"]}}}})  # macs required
    result.validate(call(api, "POST", "/v1/apply?dry_run=true", DOC)[1])
    result.validate(call(api, "POST", "/v1/apply", DOC)[1])
    result.validate(call(api, "POST", "/v1/apply?prune=true", {"hosts": {}, "ports": {}})[1])
    document.validate(call(api, "GET", "/v1/export")[1])


def test_a_host_admitted_with_its_rules_gets_them_before_it_joins(api, monkeypatch):
    """Rules first, then admissions: the host's first flows are computed guarded, never open for a moment."""
    core, seen = api.b.core, []
    for name in ("put_port_rule", "decide"):
        real = getattr(core, name)
        monkeypatch.setattr(core, name, lambda *a, _real=real, _name=name: seen.append(
            (_name, "host2" in core.read.hosts)) or _real(*a))
    assert call(api, "POST", "/v1/apply", DOC)[0] == 200
    assert seen[0] == ("put_port_rule", False) and ("decide", False) in seen and "host2" in core.read.hosts

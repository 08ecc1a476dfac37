"""Hosts in the REST API: waiting hosts listed with why, admissions stored then applied, port rules,
refused claims shown; bad requests change nothing (controller/northbound/hosts.py)."""

import pytest

from controller.core import admission
from controller.core.admission import HostPolicy
from controller.model.ops import AddTunnelPorts, Wipe
from controller.model.state import HostView, Peer, Tenant
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, state


@pytest.fixture
def api(tmp_path):
    """host1 admitted (listed) and joined; host2 connected, waiting for an operator."""
    a = Api(Backend(str(tmp_path / "h.db"), policy=HostPolicy(admission.APPROVE, listed=("host1",))))
    a.b.core.put_tenant(Tenant("blue", 5001, 10))
    for i in (1, 2):
        a.b.core.datapath_up(i)
        a.b.core.host_view(HostView(f"host{i}", f"10.99.0.{i}", i, "br", 1, member_vlans=frozenset({10})), 0,
                           Peer(f"10.98.0.{i}:4000{i}"))
    return a


def test_a_waiting_host_is_listed_with_why_and_given_nothing(api):
    status, hosts = call(api, "GET", "/v1/hosts")
    assert status == 200 and [h["id"] for h in hosts] == ["host1", "host2"]
    one, two = hosts
    assert (one["admitted"], one["admission"], one["peer"]) == (True, "config", "10.98.0.1:40001")
    assert two["admitted"] is False and two["joined"] is False and two["tunnels"] == [] and two["tenants"] == []
    assert "overlayctl hosts admit host2" in two["admission"] and two["reason"].startswith("not admitted")
    assert two["connected"] == {"ovsdb": True, "openflow": True} and two["waiting_since"] == 0
    assert call(api, "GET", "/v1/hosts/host2")[1] == two
    assert call(api, "GET", "/v1/hosts/nope")[0] == 404


def test_admitting_stores_then_joins_and_revoking_takes_it_out(api):
    status, doc = call(api, "PUT", "/v1/hosts/host2/admission", {"admitted": True})
    assert status == 200 and doc == {"id": "host2", "admitted": True, "by": "operator", "reason": None,
                                     "mode": "approve"}
    assert api.b.store.host_records()[0] == {"host2": True}
    assert "host2" in api.b.core.read.hosts
    assert any(isinstance(op, AddTunnelPorts) and "10.99.0.2" in op.remote_ips for op in api.b.applied)
    status, doc = call(api, "PUT", "/v1/hosts/host2/admission", {"admitted": False})
    assert (status, doc["admitted"], api.b.store.host_records()[0]) == (200, False, {"host2": False})
    assert "host2" in api.b.core.read.waiting and "revoked" in doc["reason"]
    assert call(api, "GET", "/v1/hosts/host2/admission")[1] == doc
    assert call(api, "PUT", "/v1/hosts/host1/admission", {"admitted": False})[1]["admitted"] is False
    assert Wipe(1) not in api.b.applied  # host1's switch was never read back: nothing of ours on it to wipe


def test_a_host_can_be_admitted_before_it_ever_connects(api):
    status, doc = call(api, "PUT", "/v1/hosts/host9/admission", {"admitted": True})
    assert (status, doc["admitted"], doc["by"]) == (200, True, "operator")
    api.b.core.host_view(HostView("host9", "10.99.0.9", 9, "br", 1), 1.0)
    assert "host9" in api.b.core.read.hosts


@pytest.mark.parametrize("path, body", [
    ("/v1/hosts/host2/admission", {"admitted": "yes"}),
    ("/v1/hosts/host2/admission", {"admitted": True, "extra": 1}),
    ("/v1/hosts/host2/admission", []),
    ("/v1/hosts/host2/ports/vm1", {"macs": []}),
    ("/v1/hosts/host2/ports/vm1", {"macs": ["01:00:5e:00:00:01"]}),  # multicast
    ("/v1/hosts/host2/ports/vm1", {"macs": ["02:00:00:00:00:01"], "ips": ["10.0.0.300"]}),
    ("/v1/hosts/host2/ports/vm1", {"macs": ["02:00:00:00:00:01"], "ips": ["224.0.0.1"]}),
    ("/v1/hosts/host2/ports/vm1", {"macs": ["02:00:00:00:00:01"], "vlan": 3}),
    ("/v1/hosts/host2/ports/vm1", {"macs": ["02:00:00:00:00:01"] * 65}),
])
def test_bad_requests_are_refused_and_change_nothing(api, path, body):
    before = state(api)
    status, doc = call(api, "PUT", path, body)
    assert status == 400 and doc["error"]
    assert state(api) == before


def test_port_rules_are_set_shown_guarded_by_etag_and_removed(api):
    body = {"macs": ["02:00:00:00:00:AA"], "ips": ["192.168.1.1", "fd00::0001"]}
    status, doc = call(api, "PUT", "/v1/hosts/host1/ports/vm1", body)
    assert status == 200 and doc == {"port": "vm1", "macs": ["02:00:00:00:00:aa"], "ips": ["192.168.1.1", "fd00::1"]}
    assert [r.port for r in api.b.store.host_records()[1]] == ["vm1"]
    req_tag = call(api, "GET", "/v1/hosts/host1/ports/vm1")
    assert req_tag[1] == doc and call(api, "GET", "/v1/hosts/host1/ports")[1] == [doc]
    assert call(api, "PUT", "/v1/hosts/host1/ports/vm1", {"macs": ["02:00:00:00:00:bb"]},
                headers={"If-Match": '"stale"'})[0] == 412
    assert call(api, "DELETE", "/v1/hosts/host1/ports/vm1", headers={"If-Match": '"stale"'})[0] == 412
    assert call(api, "DELETE", "/v1/hosts/host1/ports/vm1")[0] == 204
    assert call(api, "GET", "/v1/hosts/host1/ports/vm1")[0] == 404
    assert call(api, "DELETE", "/v1/hosts/host1/ports/vm1")[0] == 404
    assert api.b.store.host_records()[1] == [] and api.b.core.read.port_rules("host1") == {}


def test_refused_claims_are_shown_on_the_host_they_claimed(api):
    api.b.core.claim_ovsdb("host1", Peer("10.98.0.66:5555"), live=True, now=3.0)
    claim, = call(api, "GET", "/v1/hosts/host1")[1]["refused_claims"]
    assert (claim["peer"], claim["channel"], claim["reason"], claim["count"], claim["at"]) == (
        "10.98.0.66:5555", "ovsdb", "in_use", 1, 3.0)
    assert "up on another connection" in claim["why"]

"""REST validation and behaviour through the real WSGI app, with the core in memory."""

import json

import pytest
from webob import Request

from controller.core import Core
from controller.pipeline import Settings
from controller.rest import Api
from controller.state import HostView
from controller.store import Store


class Backend:
    def __init__(self, tmp_path):
        self.store = Store(str(tmp_path / "t.db"))
        self.core = Core(Settings(), self.store.tenants())
        self.applied = []

    def call(self, fn, timeout=None):
        return fn()

    def apply(self, ops):
        self.applied += ops

    def now(self):
        return 0.0


@pytest.fixture
def api(tmp_path):
    return Api(Backend(tmp_path))


def call(api, method, path, body=None, content_type="application/json", raw=None):
    req = Request.blank(path, method=method)
    if body is not None or raw is not None:
        req.body = raw if raw is not None else json.dumps(body).encode()
        req.content_type = content_type
    resp = req.get_response(api)
    return resp.status_int, (resp.json if resp.body else None)


def snapshot(api):
    return sorted(t.to_json()["name"] for t in api.b.store.tenants()), dict(api.b.core.tenants)


def test_create_list_show_delete(api):
    assert call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})[0] == 201
    assert call(api, "POST", "/v1/tenants", {"name": "red", "vni": 5002, "vlan": 20})[0] == 201
    status, body = call(api, "GET", "/v1/tenants")
    assert status == 200 and [t["name"] for t in body] == ["blue", "red"]
    assert call(api, "GET", "/v1/tenants/blue")[1]["vni"] == 5001
    assert call(api, "DELETE", "/v1/tenants/blue") == (204, None)
    assert call(api, "GET", "/v1/tenants/blue")[0] == 404
    assert [t.name for t in api.b.store.tenants()] == ["red"]


@pytest.mark.parametrize("body,status,words", [
    ({"vni": 1, "vlan": 1}, 400, "name"),
    ({"name": "x", "vlan": 1}, 400, "vni"),
    ({"name": "x", "vni": 0, "vlan": 1}, 400, "vni"),
    ({"name": "x", "vni": 16777216, "vlan": 1}, 400, "vni"),
    ({"name": "x", "vni": "5", "vlan": 1}, 400, "vni"),
    ({"name": "x", "vni": True, "vlan": 1}, 400, "vni"),
    ({"name": "x", "vni": 5, "vlan": 0}, 400, "vlan"),
    ({"name": "x", "vni": 5, "vlan": 4095}, 400, "vlan"),
    ({"name": "x y", "vni": 5, "vlan": 4}, 400, "name"),
    ({"name": "x", "vni": 5, "vlan": 4, "colour": "blue"}, 400, "unknown"),
    ({"name": "x", "vni": 5, "vlan": 4, "hosts": "h1"}, 400, "hosts"),
    ({"name": "x", "vni": 5, "vlan": 4, "vlans": {"h1": 9999}}, 400, "vlans.h1"),
    ([1, 2], 400, "object"),
    ({"name": "blue", "vni": 7, "vlan": 70}, 409, "already exists"),
    ({"name": "x", "vni": 5001, "vlan": 70}, 409, "VNI 5001"),
    ({"name": "x", "vni": 7, "vlan": 10}, 409, "VLAN 10"),
])
def test_bad_tenants_are_refused_with_a_message_and_change_nothing(api, body, status, words):
    call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
    before = snapshot(api)
    got, reply = call(api, "POST", "/v1/tenants", body)
    assert got == status and words in reply["error"]
    assert snapshot(api) == before


def test_malformed_json_wrong_type_and_oversized_bodies(api):
    assert call(api, "POST", "/v1/tenants", raw=b"{not json")[0] == 400
    assert call(api, "POST", "/v1/tenants", raw=b"\xff\xfe")[0] == 400
    assert call(api, "POST", "/v1/tenants", {"name": "a"}, content_type="text/plain")[0] == 415
    assert call(api, "POST", "/v1/tenants", raw=b" " * (70 * 1024))[0] == 413
    assert api.b.store.tenants() == []


def test_same_vlan_is_fine_on_different_hosts(api):
    assert call(api, "POST", "/v1/tenants", {"name": "a", "vni": 1, "vlan": 10, "hosts": ["h1"]})[0] == 201
    assert call(api, "POST", "/v1/tenants", {"name": "b", "vni": 2, "vlan": 10, "hosts": ["h2"]})[0] == 201
    status, reply = call(api, "POST", "/v1/tenants", {"name": "c", "vni": 3, "vlan": 10})
    assert status == 409 and "host 'h1'" in reply["error"]
    # an override moves c off VLAN 10 where it would clash
    assert call(api, "POST", "/v1/tenants", {"name": "c", "vni": 3, "vlan": 10,
                                             "vlans": {"h1": 11, "h2": 12}})[0] == 201


def test_replace_changes_vni_and_keeps_name(api):
    call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
    status, body = call(api, "PUT", "/v1/tenants/blue", {"vni": 6001, "vlan": 11})
    assert status == 200 and body["vni"] == 6001
    assert call(api, "PUT", "/v1/tenants/blue", {"name": "other", "vni": 1, "vlan": 1})[0] == 400
    assert call(api, "PUT", "/v1/tenants/nope", {"vni": 1, "vlan": 1})[0] == 404
    assert api.b.store.tenants()[0].vni == 6001


def test_unknown_routes_and_methods(api):
    assert call(api, "GET", "/v1/nothing")[0] == 404
    status, reply = call(api, "PATCH", "/v1/tenants")
    assert status == 405 and "GET" in reply["error"]
    assert call(api, "DELETE", "/v1/tenants/ghost")[0] == 404
    assert call(api, "GET", "/v1/hosts/ghost")[0] == 404


def test_hosts_and_endpoints(api):
    call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
    api.b.core.host_view(HostView("h1", "10.99.0.1", 1, "br", 1, member_vlans=frozenset({10})), now=0)
    status, hosts = call(api, "GET", "/v1/hosts")
    assert status == 200 and hosts[0]["id"] == "h1" and hosts[0]["overlay_ip"] == "10.99.0.1"
    assert hosts[0]["tenants"] == [{"name": "blue", "vni": 5001, "vlan": 10, "members": True}]
    assert call(api, "GET", "/v1/tenants/blue/endpoints") == (200, [])
    assert call(api, "DELETE", "/v1/hosts/h1") == (204, None)
    assert call(api, "GET", "/v1/hosts") == (200, [])


def test_tenants_survive_a_restart(tmp_path):
    call(Api(Backend(tmp_path)), "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
    again = Api(Backend(tmp_path))
    assert [t["name"] for t in call(again, "GET", "/v1/tenants")[1]] == ["blue"]

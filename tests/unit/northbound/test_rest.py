"""REST validation and behaviour through the real WSGI app, with the core in memory."""


import pytest
from webob import Request

from controller.model.state import Endpoint, HostView
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, seeded, state


@pytest.fixture
def api(tmp_path):
    return Api(Backend(str(tmp_path / "t.db")))


def snapshot(api):
    return state(api)


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
    assert hosts[0]["tenants"] == [{"name": "blue", "vni": 5001, "vlan": 10, "members": True, "endpoints": 0,
                                   "learning_capped": False}]
    assert call(api, "GET", "/v1/tenants/blue/endpoints") == (200, [])
    status, reply = call(api, "DELETE", "/v1/hosts/h1")
    assert status == 409 and "still connected" in reply["error"]
    api.b.core.ovsdb_down("h1")
    assert call(api, "DELETE", "/v1/hosts/h1") == (204, None)
    assert call(api, "GET", "/v1/hosts") == (200, [])


def test_tenants_survive_a_restart(tmp_path):
    call(Api(Backend(str(tmp_path / "t.db"))), "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
    again = Api(Backend(str(tmp_path / "t.db")))
    assert [t["name"] for t in call(again, "GET", "/v1/tenants")[1]] == ["blue"]


# ---- PATCH ---------------------------------------------------------------------------------

def test_patch_changes_only_the_given_fields(api):
    call(api, "POST", "/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10, "hosts": ["h1", "h2"],
                                      "vlans": {"h1": 11}})
    status, body = call(api, "PATCH", "/v1/tenants/blue", {"vni": 6001})
    assert status == 200 and body == {"name": "blue", "vni": 6001, "vlan": 10, "hosts": ["h1", "h2"],
                                      "vlans": {"h1": 11}}
    # merge patch: null removes ('hosts' -> every host), a nested null drops one override
    status, body = call(api, "PATCH", "/v1/tenants/blue", {"hosts": None, "vlans": {"h1": None, "h3": 30}},
                        content_type="application/merge-patch+json")
    assert status == 200 and body["hosts"] is None and body["vlans"] == {"h3": 30}
    assert api.b.store.tenants()[0].to_json() == body


@pytest.mark.parametrize("patch,status,words", [
    ({"vni": None}, 400, "vni"),
    ({"vlan": 0}, 400, "vlan"),
    ({"name": "other"}, 400, "cannot be changed"),
    ({"name": None}, 400, "cannot be changed"),
    ({"colour": "x"}, 400, "unknown"),
    ({"host": None}, 400, "unknown field(s): host"),  # a null does not excuse a misspelt field (#22.6)
    ({"hosts": None, "vlan": 11, "colour": None}, 400, "unknown field(s): colour"),
    ([1], 400, "object"),
    ({"vni": 5002}, 409, "VNI 5002"),
    ({"vlan": 20}, 409, "VLAN 20"),
])
def test_bad_patches_change_nothing(api, patch, status, words):
    seeded(api)
    before = state(api)
    got, reply = call(api, "PATCH", "/v1/tenants/blue", patch)
    assert got == status and words in reply["error"]
    assert state(api) == before


def test_patch_of_a_missing_tenant_and_wrong_type(api):
    assert call(api, "PATCH", "/v1/tenants/ghost", {"vni": 1})[0] == 404
    seeded(api)
    assert call(api, "PATCH", "/v1/tenants/blue", {"vni": 1}, content_type="text/plain")[0] == 415


def test_get_then_put_round_trips(api):
    seeded(api)
    status, body = call(api, "GET", "/v1/tenants/blue")
    before = state(api)
    assert call(api, "PUT", "/v1/tenants/blue", body) == (200, body)
    assert state(api) == before  # an unchanged PUT sends nothing to the switches


# ---- more validation -------------------------------------------------------------------------

@pytest.mark.parametrize("raw,words", [
    (b'{"name": "x", "vni": 1, "vni": 2, "vlan": 3}', "duplicate key"),
    (b'{"name": "x", "vni": NaN, "vlan": 3}', "NaN"),
    (b"[" * 20000 + b"]" * 20000, "nested too deeply"),
    (b'{"name": "x", "vni": 1e400, "vlan": 3}', "vni"),
    # 5,000 digits: the field says what it takes, not Python's int-digits limit (#22.11)
    (b'{"name": "x", "vni": ' + b"9" * 5000 + b', "vlan": 3}', "'vni' must be an integer from 1 to"),
    (b'{"name": "x", "vni": -' + b"9" * 5000 + b', "vlan": 3}', "'vni' must be an integer from 1 to"),
    (b'{"name": "x", "vni": 5, "vlan": 3, "vlans": {"h1": ' + b"1" * 41 + b'}}', "'vlans.h1' must be"),
])
def test_hostile_json_is_a_400(api, raw, words):
    status, reply = call(api, "POST", "/v1/tenants", raw=raw)
    assert status == 400 and words in reply["error"]
    assert "set_int_max_str_digits" not in reply["error"]
    assert api.b.store.tenants() == []


@pytest.mark.parametrize("body,words", [
    ({"name": "blue\n", "vni": 1, "vlan": 1}, "name"),
    ({"name": "x", "vni": 1, "vlan": 1, "hosts": ["a/b"]}, "host id"),
    ({"name": "x", "vni": 1, "vlan": 1, "hosts": [""]}, "host id"),
    ({"name": "x", "vni": 1, "vlan": 1, "vlans": {"": 3}}, "host id"),
    ({"name": "x", "vni": 1, "vlan": 1, "vlans": None}, "vlans"),
    ({"name": "x", "vni": 1, "vlan": 1, "hosts": ["h1"], "vlans": {"h2": 3}}, "not in 'hosts'"),
])
def test_names_and_host_ids_are_checked(api, body, words):
    status, reply = call(api, "POST", "/v1/tenants", body)
    assert status == 400 and words in reply["error"]


def test_405_names_the_allowed_methods_in_allow(api):
    req = Request.blank("/v1/tenants/blue", method="POST")
    resp = req.get_response(api)
    assert resp.status_int == 405 and resp.headers["Allow"] == "DELETE, GET, HEAD, PATCH, PUT"
    assert resp.json["error"].startswith("method POST not allowed")


def test_a_path_that_is_not_utf8_is_a_400(api):
    req = Request.blank("/v1/tenants/x")
    req.environ["PATH_INFO"] = "/v1/tenants/\xff"
    resp = req.get_response(api)
    assert resp.status_int == 400 and "UTF-8" in resp.json["error"]


def test_unexpected_errors_are_json_500s_and_the_server_lives(api, monkeypatch):
    monkeypatch.setattr(api, "list_tenants", lambda req: 1 / 0)
    status, reply = call(api, "GET", "/v1/tenants")
    assert status == 500 and "internal error" in reply["error"]
    assert call(api, "GET", "/v1/health")[0] == 200


def test_a_database_failure_is_a_503_and_nothing_is_applied(api, monkeypatch):
    from controller.core.store import StoreError

    def broken(tenant):
        raise StoreError("disk I/O error")
    monkeypatch.setattr(api.b.store, "put_tenant", broken)
    before = state(api)
    status, reply = call(api, "POST", "/v1/tenants", {"name": "x", "vni": 1, "vlan": 1})
    assert status == 503 and "disk I/O error" in reply["error"]
    assert state(api) == before


# ---- hosts, VLAN view, endpoints, counters, health ----------------------------------------

def test_host_vlan_mapping(api):
    seeded(api)
    call(api, "POST", "/v1/tenants", {"name": "green", "vni": 7, "vlan": 30, "hosts": ["host2"],
                                      "vlans": {"host2": 5}})
    assert call(api, "GET", "/v1/hosts/host1/vlans") == (200, [
        {"vlan": 10, "tenant": "blue", "vni": 5001, "members": True},
        {"vlan": 20, "tenant": "red", "vni": 5002, "members": False}])
    status, rows = call(api, "GET", "/v1/hosts/host2/vlans")
    assert status == 200 and [(r["vlan"], r["tenant"]) for r in rows] == [(5, "green"), (10, "blue"), (20, "red")]
    assert call(api, "GET", "/v1/hosts/ghost/vlans")[0] == 404


def test_hosts_are_listed_by_id_with_connection_state(api):
    seeded(api)
    status, hosts = call(api, "GET", "/v1/hosts")
    assert [h["id"] for h in hosts] == ["host1", "host2"]
    assert hosts[0]["connected"] == {"ovsdb": True, "openflow": False}
    assert hosts[0]["datapath_id"] == "0000000000000001"
    assert call(api, "GET", "/v1/hosts/host2")[1] == hosts[1]


def test_endpoints_show_mac_ips_host_vlan_and_age(api):
    seeded(api)
    core = api.b.core
    core.ix.add_endpoint(Endpoint(5001, "02:00:00:00:00:02", "host2", 10, 990.0, {"10.0.0.2", "fd00::2"}))
    core.ix.add_endpoint(Endpoint(5001, "02:00:00:00:00:01", "host1", 10, 999.5))
    core.ix.add_endpoint(Endpoint(5002, "02:00:00:00:00:03", "host1", 20, 999.0))
    status, eps = call(api, "GET", "/v1/tenants/blue/endpoints")
    assert status == 200 and [e["mac"] for e in eps] == ["02:00:00:00:00:01", "02:00:00:00:00:02"]
    assert eps[1] == {"mac": "02:00:00:00:00:02", "ips": ["10.0.0.2", "fd00::2"], "host": "host2",
                      "port": None, "vlan": 10, "last_seen": 990.0, "idle_s": 10.0}
    assert call(api, "GET", "/v1/tenants/ghost/endpoints")[0] == 404


def test_counters_always_show_the_main_keys(api):
    status, counters = call(api, "GET", "/v1/counters")
    assert status == 200 and counters["arp_proxied"] == 0 and counters["flow_mods"] == 0
    api.b.core.counters["floods_suppressed"] += 3
    api.b.core.counters["zzz_new"] += 1
    counters = call(api, "GET", "/v1/counters")[1]
    assert counters["floods_suppressed"] == 3 and list(counters) == sorted(counters)


def test_health_is_ready_and_says_503_when_the_loop_or_database_do_not_answer(api, monkeypatch):
    status, body = call(api, "GET", "/v1/health")
    assert status == 200 and body["ready"] is True

    def stuck(fn, timeout=None):
        raise TimeoutError
    monkeypatch.setattr(api.b, "call", stuck)
    status, body = call(api, "GET", "/v1/health")
    assert status == 503 and body["ready"] is False and "event loop" in body["reason"]
    monkeypatch.undo()
    api.b.store.close()
    status, body = call(api, "GET", "/v1/health")
    assert status == 503 and body["ready"] is False


def test_a_chunked_body_without_length_is_read_and_limited(api):
    import io

    def post(raw):
        req = Request.blank("/v1/tenants", method="POST", headers={"Transfer-Encoding": "chunked"})
        req.environ.pop("CONTENT_LENGTH", None)
        req.environ["CONTENT_TYPE"] = "application/json"
        req.environ["wsgi.input"] = io.BytesIO(raw)
        return req.get_response(api).status_int
    assert post(b" " * (65 * 1024) + b"{}") == 413
    assert post(b'{"name": "a", "vni": 1, "vlan": 1}') == 201

"""HTTP conventions: Location on 201, HEAD wherever GET works, ETag + If-Match on tenants, ?host= on endpoints."""

import pytest
from webob import Request

from controller.northbound import rest
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, seeded, state
from tests.unit.world import arp_frame


@pytest.fixture
def api(tmp_path):
    return seeded(Api(Backend(str(tmp_path / "c.db"))))


def request(api, method, path, body=None, headers=None, content_type="application/json"):
    req = Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = rest.json.dumps(body).encode()
        req.content_type = content_type
    return req.get_response(api)


def test_create_answers_201_with_location_and_etag_of_the_new_tenant(api):
    resp = request(api, "POST", "/v1/tenants", {"name": "green.1", "vni": 7, "vlan": 30})
    assert resp.status_int == 201
    assert resp.headers["Location"] == "http://localhost/v1/tenants/green.1"  # webob makes it absolute
    got = request(api, "GET", "/v1/tenants/green.1")
    assert got.status_int == 200 and got.json == resp.json
    assert got.headers["ETag"] == resp.headers["ETag"] and resp.headers["ETag"].startswith('"')


@pytest.mark.parametrize("path", ["/v1/tenants", "/v1/tenants/blue", "/v1/tenants/blue/endpoints", "/v1/hosts",
                                  "/v1/hosts/host1", "/v1/hosts/host1/vlans", "/v1/counters", "/v1/health",
                                  "/v1/openapi.json", "/metrics"])
def test_head_works_wherever_get_does_with_the_same_headers_and_no_body(api, path):
    get, head = request(api, "GET", path), request(api, "HEAD", path)
    assert get.status_int == head.status_int == 200
    assert head.body == b"" and get.body != b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers.get("ETag") == get.headers.get("ETag")
    if path != "/metrics":  # which counts the requests themselves
        assert int(head.headers["Content-Length"]) == len(get.body)


def test_head_of_a_missing_tenant_is_a_404_and_head_is_not_allowed_where_get_is_not(api):
    assert request(api, "HEAD", "/v1/tenants/nobody").status_int == 404
    resp = request(api, "HEAD", "/v1/trace")
    assert resp.status_int == 405 and resp.headers["Allow"] == "POST"


def test_the_etag_changes_exactly_when_the_tenant_does(api):
    etag = request(api, "GET", "/v1/tenants/blue").headers["ETag"]
    same = request(api, "PUT", "/v1/tenants/blue", {"vni": 5001, "vlan": 10})
    assert same.status_int == 200 and same.headers["ETag"] == etag  # an unchanged PUT
    changed = request(api, "PATCH", "/v1/tenants/blue", {"vlan": 11})
    assert changed.status_int == 200 and changed.headers["ETag"] != etag
    assert request(api, "GET", "/v1/tenants/blue").headers["ETag"] == changed.headers["ETag"]
    assert request(api, "GET", "/v1/tenants/red").headers["ETag"] not in (etag, changed.headers["ETag"])


@pytest.mark.parametrize("method, body", [("PUT", {"vni": 5001, "vlan": 12}), ("PATCH", {"vlan": 12}),
                                          ("DELETE", None)])
def test_a_stale_if_match_is_a_412_that_changes_nothing(api, method, body):
    old = request(api, "GET", "/v1/tenants/blue").headers["ETag"]
    assert request(api, "PATCH", "/v1/tenants/blue", {"vlan": 11}).status_int == 200  # someone else's write
    before = state(api)
    resp = request(api, method, "/v1/tenants/blue", body, headers={"If-Match": old})
    assert resp.status_int == 412, resp.text
    assert "has changed since it was read" in resp.json["error"] and old in resp.json["error"]
    assert state(api) == before


@pytest.mark.parametrize("header", ["current in a list", "*"])
@pytest.mark.parametrize("method, body", [("PUT", {"vni": 5001, "vlan": 12}), ("PATCH", {"vlan": 12}),
                                          ("DELETE", None)])
def test_the_current_etag_or_a_star_lets_the_write_through(api, method, body, header):
    etag = request(api, "GET", "/v1/tenants/blue").headers["ETag"]
    value = f'"stale", {etag}' if header == "current in a list" else "*"
    resp = request(api, method, "/v1/tenants/blue", body, headers={"If-Match": value})
    assert resp.status_int in (200, 204), resp.text
    after = request(api, "GET", "/v1/tenants/blue")  # and it was applied
    assert after.status_int == 404 if method == "DELETE" else after.json["vlan"] == 12, after.text


def test_a_star_on_a_tenant_that_does_not_exist_is_a_412_or_404_that_changes_nothing(api):
    before = state(api)
    for method, body in (("PUT", {"vni": 77, "vlan": 77}), ("PATCH", {"vlan": 77}), ("DELETE", None)):
        resp = request(api, method, "/v1/tenants/nobody", body, headers={"If-Match": "*"})
        assert resp.status_int in (404, 412), (method, resp.status_int, resp.text)
    assert state(api) == before


@pytest.mark.parametrize("header", ["nonsense", '"a" junk', "W/", '"a",,'])
def test_a_malformed_if_match_is_a_400_and_a_weak_tag_never_matches(api, header):
    before = state(api)
    resp = request(api, "DELETE", "/v1/tenants/blue", headers={"If-Match": header})
    assert resp.status_int == 400 and "If-Match" in resp.json["error"]
    etag = request(api, "GET", "/v1/tenants/blue").headers["ETag"]
    assert request(api, "DELETE", "/v1/tenants/blue", headers={"If-Match": f"W/{etag}"}).status_int == 412
    assert state(api) == before


def test_if_match_on_a_missing_tenant_is_a_404(api):
    assert request(api, "DELETE", "/v1/tenants/nobody", headers={"If-Match": "*"}).status_int == 404


def test_endpoints_filtered_by_host(api):
    for i, dpid in ((1, 1), (2, 2), (3, 2)):  # learned as the switches would report them
        api.b.core.packet_in(dpid, arp_frame(f"02:00:00:00:00:0{i}", f"10.0.0.{i}", "10.0.0.9", 10), now=990.0)
    status, all_eps = call(api, "GET", "/v1/tenants/blue/endpoints")
    assert status == 200 and [e["host"] for e in all_eps] == ["host1", "host2", "host2"]
    status, on2 = call(api, "GET", "/v1/tenants/blue/endpoints?host=host2")
    assert status == 200 and on2 == [e for e in all_eps if e["host"] == "host2"]
    assert call(api, "GET", "/v1/tenants/blue/endpoints?host=elsewhere") == (200, [])
    status, reply = call(api, "GET", "/v1/tenants/blue/endpoints?host=a/b")
    assert status == 400 and "'host'" in reply["error"]

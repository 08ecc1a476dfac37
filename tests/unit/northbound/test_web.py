"""The web view's routes: the page and its code are served (public), its data follows the API's auth,
and /v1/topology says which tunnel each host uses toward each peer and where each tenant floods."""

import re
from dataclasses import replace

import pytest
from webob import Request

from controller.model.state import Tenant, TunnelPort
from controller.northbound.auth import TokenAuth
from controller.northbound.rest import Api
from controller.northbound.web import CSP, SERVED, tenant_flood_json, topology_json
from tests.unit.api_backend import Backend, call, seeded
from tests.unit.world import ip_of, view, world

TOKEN = "web-token-42"


def get(api, path, headers=None):
    return Request.blank(path, headers=headers or {}).get_response(api)


@pytest.fixture
def api(tmp_path):
    return seeded(Api(Backend(str(tmp_path / "w.db"))))


@pytest.fixture
def locked(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    return seeded(Api(Backend(str(tmp_path / "w.db")), TokenAuth(str(path))))


def test_the_page_loads_only_its_own_script_and_style(api):
    resp = get(api, "/")
    assert resp.status_int == 200 and resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP and "'unsafe-inline'" not in CSP
    refs = re.findall(r'(?:src|href)="([^"]+)"', resp.text)
    assert sorted(refs) == ["/ui/app.css", "/ui/app.js", "data:,"]  # nothing from elsewhere
    assert "<script>" not in resp.text and "style=" not in resp.text  # the CSP would block inline code


def test_with_no_host_the_page_says_how_one_joins(api):
    """The hint is in the page (hidden until the topology has no host; tests/e2e/test_webview.py sees it)."""
    page, script = get(api, "/").text, get(api, "/ui/app.js").text
    hint = re.search(r'<div id="no-hosts".*?</div>', page, re.S)
    assert hint and "set-manager" in hint[0] and "set-controller br1" in hint[0] and "joining-a-host" in hint[0]
    assert '$("#no-hosts").hidden = topo.hosts.length > 0' in script


@pytest.mark.parametrize("asset,ctype,needle", [("app.js", "text/javascript", "/v1/topology"),
                                                ("app.css", "text/css", ".tunnel.missing")])
def test_assets_are_served_from_the_package(api, asset, ctype, needle):
    resp = get(api, f"/ui/{asset}")
    assert resp.status_int == 200 and resp.content_type == ctype and needle in resp.text
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert asset in SERVED


@pytest.mark.parametrize("asset", ["index.html", "nope.js", "..", "%2e%2e%2fweb.py", "app.js.bak"])
def test_anything_else_under_ui_is_a_json_404(api, asset):
    status, body = call(api, "GET", f"/ui/{asset}")
    assert status == 404 and "no such" in body["error"]


def test_with_a_token_the_page_is_public_but_its_data_is_not(locked):
    assert get(locked, "/").status_int == 200 and get(locked, "/ui/app.js").status_int == 200
    for path in ("/v1/topology", "/v1/tenants/blue/flood"):
        status, body = call(locked, "GET", path)
        assert status == 401 and "token" in body["error"]
    status, body = call(locked, "GET", "/v1/topology", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and [h["id"] for h in body["hosts"]] == ["host1", "host2"]
    assert call(locked, "POST", "/", {})[0] == 405  # nothing to write there


def test_topology_tunnel_states_channels_and_flood_sets(api):
    # world(): h1..h3 meshed with our tunnels (t<j> on ofport 10 + j) and connected; blue has VMs
    # on every host, red on h2 only. Then: h1's port to h3 is one made by hand; h2's to h3 has no
    # ofport yet; h3's to h2 is GRE (the wrong kind: unusable), and h3 drops both channels.
    core = api.b.core = world(3, members={1: frozenset({10}), 2: frozenset({10, 20}), 3: frozenset({10})})
    by_hand = TunnelPort("hand3", "vxlan", ip_of(3), 13, False)
    changes = {1: {3: by_hand}, 2: {3: replace(view(2, [3]).tunnels[0], ofport=None)},
               3: {2: replace(view(3, [2]).tunnels[0], type="gre")}}
    for i, ports in changes.items():
        v = core.hosts[f"h{i}"].view
        tunnels = tuple(ports.get(j, p) for j, p in zip([j for j in (1, 2, 3) if j != i], v.tunnels, strict=True))
        core.host_view(replace(v, tunnels=tunnels), now=0.0)
    core.datapath_down(3)
    core.ovsdb_down("h3")
    status, doc = call(api, "GET", "/v1/topology")
    assert status == 200 and doc == topology_json(core.read)
    assert doc["tunnel_type"] == "vxlan"
    assert [(h["id"], h["connected"]) for h in doc["hosts"]] == [
        ("h1", {"ovsdb": True, "openflow": True}), ("h2", {"ovsdb": True, "openflow": True}),
        ("h3", {"ovsdb": False, "openflow": False})]
    assert {(t["host"], t["peer"]): (t["state"], t["port"]) for t in doc["tunnels"]} == {
        ("h1", "h2"): ("created", "t2"), ("h1", "h3"): ("adopted", "hand3"),
        ("h2", "h1"): ("created", "t1"), ("h2", "h3"): ("missing", None),
        ("h3", "h1"): ("created", "t1"), ("h3", "h2"): ("missing", None)}
    assert doc["tenants"] == [{"name": "blue", "vni": 5001, "hosts": None},
                              {"name": "red", "vni": 5002, "hosts": None}]
    status, blue = call(api, "GET", "/v1/tenants/blue/flood")
    assert status == 200 and blue == tenant_flood_json(core.read, "blue")
    # As programmed: h1 copies blue's broadcasts to both peers (one over the adopted port), h2
    # has no usable port to h3, h3 is not connected so nothing of it is known.
    assert blue == {"name": "blue", "vni": 5001, "members": ["h1", "h2", "h3"],
                    "flood": {"h1": ["h2", "h3"], "h2": ["h1"], "h3": []}}
    red = call(api, "GET", "/v1/tenants/red/flood")[1]
    assert (red["members"], red["flood"]["h2"]) == (["h2"], [])  # nobody else to copy to


def test_a_placed_tenant_floods_only_where_it_is(api):
    core = api.b.core
    core.put_tenant(Tenant("green", 5003, 30, frozenset({"host2", "elsewhere"})))
    assert call(api, "GET", "/v1/topology")[1]["tenants"][1] == {
        "name": "green", "vni": 5003, "hosts": ["elsewhere", "host2"]}
    assert call(api, "GET", "/v1/tenants/green/flood")[1] == {
        "name": "green", "vni": 5003, "members": [], "flood": {"host2": []}}
    status, body = call(api, "GET", "/v1/tenants/nope/flood")
    assert status == 404 and "nope" in body["error"]


def test_topology_of_an_empty_controller(tmp_path):
    assert call(Api(Backend(str(tmp_path / "e.db"))), "GET", "/v1/topology") == (
        200, {"tunnel_type": "vxlan", "hosts": [], "tunnels": [], "tenants": []})

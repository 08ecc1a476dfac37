"""The one HTTP client (controller/cli/client.py) as the lab uses it: ctl.api.get/post/put/delete/request."""

import urllib.error

import pytest

from controller.cli.client import ApiError, Client
from lab.netlab import free_tcp_ports
from tests.unit.cli.test_cli import TOKEN, served  # noqa: F401  (the fixture: the real API over HTTP)


def test_calls_return_the_decoded_body_and_send_the_token(served):  # noqa: F811
    api = Client(served.url + "/", TOKEN)
    assert api.base == served.url
    created = api.post("/v1/tenants", {"name": "green", "vni": 7, "vlan": 30})
    assert created == api.get("/v1/tenants/green") == {"name": "green", "vni": 7, "vlan": 30,
                                                      "hosts": None, "vlans": {}}
    assert api.put("/v1/tenants/green", {"vni": 8, "vlan": 30})["vni"] == 8
    assert api.request("PATCH", "/v1/tenants/green", {"vlan": 31}, "application/merge-patch+json")["vlan"] == 31
    assert api.delete("/v1/tenants/green") is None
    assert "green" not in [t["name"] for t in api.get("/v1/tenants")]


def test_an_error_status_raises_api_error_with_the_apis_body(served):  # noqa: F811
    api = Client(served.url, TOKEN)
    with pytest.raises(ApiError) as e:
        api.post("/v1/tenants", {"name": "again", "vni": 5001, "vlan": 99})
    assert e.value.status == 409 and e.value.body == {"error": "VNI 5001 is already used by tenant 'blue'"}
    assert e.value.message == "VNI 5001 is already used by tenant 'blue'"
    with pytest.raises(ApiError) as e:
        Client(served.url).delete("/v1/tenants/blue")  # no token
    assert e.value.status == 401 and "bearer token" in e.value.message
    assert api.get("/v1/tenants/blue")["vni"] == 5001  # refused: nothing changed


def test_an_unreachable_api_raises_what_urllib_raised():
    (port,) = free_tcp_ports(1)
    with pytest.raises(urllib.error.URLError) as e:
        Client(f"http://127.0.0.1:{port}", timeout=2).get("/v1/health")
    assert isinstance(e.value.reason, ConnectionRefusedError)

"""The one HTTP client (controller/cli/client.py) as the lab uses it: ctl.api.get/post/put/delete/request."""

import ssl
import threading
import urllib.error
from wsgiref.simple_server import make_server

import pytest

from controller.cli.client import ApiError, Client
from lab.netlab import free_tcp_ports
from tests.unit.cli.test_cli import TOKEN, Quiet, served  # noqa: F401  (the fixture: the real API over HTTP)


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


def test_over_https_the_apis_certificate_is_checked_against_the_ca_given(served, pki):  # noqa: F811
    key, cert = pki.controller()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = make_server("127.0.0.1", 0, served.api, handler_class=Quiet)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_port}"
    try:
        assert Client(url, TOKEN, ca_file=str(pki.controller_ca)).get("/v1/tenants/blue")["vni"] == 5001
        with pytest.raises(urllib.error.URLError) as e:  # the system's CAs do not know ovs-pki's
            Client(url, TOKEN, timeout=5).get("/v1/health")
        assert "CERTIFICATE_VERIFY_FAILED" in str(e.value.reason)
        with pytest.raises(urllib.error.URLError):  # nor does the hosts' CA vouch for the controller
            Client(url, TOKEN, timeout=5, ca_file=str(pki.switch_ca)).get("/v1/health")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

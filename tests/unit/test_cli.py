"""overlayctl against the real WSGI app served over HTTP in a thread."""

import io
import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from controller import cli
from controller.auth import TokenAuth
from controller.rest import Api
from controller.state import Endpoint
from lab.netlab import free_tcp_ports
from tests.unit.api_backend import Backend, seeded

TOKEN = "cli-token-123"


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Served:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.server: WSGIServer = make_server("127.0.0.1", 0, api, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def served(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    api = seeded(Api(Backend(str(tmp_path / "c.db")), TokenAuth(str(token))))
    api.b.core.ix.add_endpoint(Endpoint(5001, "02:00:00:00:00:01", "host1", 10, 990.0, {"10.0.0.1"}))
    s = Served(api)
    yield s
    s.close()


def run(served, *argv, env=None, token=True):
    out, err = io.StringIO(), io.StringIO()
    env = {"OVERLAY_URL": served.url, **({"OVERLAY_TOKEN": TOKEN} if token else {}), **(env or {})}
    code = cli.main(list(argv), out=out, err=err, env=env)
    return code, out.getvalue(), err.getvalue()


def test_tenants_list_as_a_table_and_as_json(served):
    code, out, _ = run(served, "tenants", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["NAME", "VNI", "VLAN", "HOSTS", "VLAN", "OVERRIDES"]
    assert lines[1].split() == ["blue", "5001", "10", "all", "-"] and lines[2].split()[0] == "red"
    code, out, _ = run(served, "tenants", "list", "--json")
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["blue", "red"]
    code, out, _ = run(served, "--json", "tenants", "list")  # before the command works too
    assert code == 0 and json.loads(out)[0]["vni"] == 5001


def test_create_show_update_delete(served):
    code, out, err = run(served, "tenants", "create", "green", "--vni", "7", "--vlan", "30",
                         "--hosts", "host1,host2", "--vlan-on", "host2=31")
    assert code == 0, err
    assert served.api.b.core.tenants["green"].vlan_on("host2") == 31
    code, out, _ = run(served, "--json", "tenants", "show", "green")
    assert json.loads(out)["hosts"] == ["host1", "host2"]
    code, out, _ = run(served, "tenants", "update", "green", "--vlan", "33", "--all-hosts", "--vlan-on", "host2=")
    assert code == 0 and served.api.b.core.tenants["green"].to_json() == {
        "name": "green", "vni": 7, "vlan": 33, "hosts": None, "vlans": {}}
    code, out, _ = run(served, "tenants", "delete", "green")
    assert code == 0 and "deleted" in out and "green" not in served.api.b.core.tenants


@pytest.mark.parametrize("argv,message", [
    (["tenants", "create", "blue", "--vni", "9", "--vlan", "9"], "HTTP 409: tenant 'blue' already exists"),
    (["tenants", "create", "x", "--vni", "0", "--vlan", "9"], "HTTP 400: 'vni' must be an integer"),
    (["tenants", "show", "ghost"], "HTTP 404: no tenant named 'ghost'"),
    (["tenants", "update", "blue", "--vni", "5002"], "HTTP 409: VNI 5002"),
    (["tenants", "delete", "ghost"], "HTTP 404"),
    (["endpoints", "ghost"], "HTTP 404"),
    (["hosts", "show", "ghost"], "HTTP 404: no host 'ghost'"),
])
def test_api_errors_exit_1_with_the_api_message(served, argv, message):
    before = served.api.b.store.tenants()
    code, out, err = run(served, *argv)
    assert code == 1 and out == "" and message in err
    assert served.api.b.store.tenants() == before


def test_token_from_file_env_or_missing(served, tmp_path):
    code, _, err = run(served, "tenants", "list", token=False)
    assert code == 1 and "HTTP 401" in err
    path = tmp_path / "tok"
    path.write_text(TOKEN + "\n")
    assert run(served, "--token-file", str(path), "tenants", "list", token=False)[0] == 0
    code, _, err = run(served, "--token-file", str(tmp_path / "nope"), "tenants", "list")
    assert code == 2 and "token file" in err


def test_hosts_vlans_endpoints_counters_health(served):
    code, out, _ = run(served, "hosts", "list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["host1", "host2"]
    code, out, _ = run(served, "hosts", "show", "host1")
    assert code == 0 and "blue" in out
    code, out, _ = run(served, "hosts", "vlans", "host2")
    assert code == 0 and [line.split()[:2] for line in out.splitlines()[1:]] == [["10", "blue"], ["20", "red"]]
    code, out, _ = run(served, "endpoints", "blue")
    assert code == 0 and out.splitlines()[1].split() == ["02:00:00:00:00:01", "10.0.0.1", "host1", "10", "10s"]
    code, out, _ = run(served, "--json", "counters")
    assert code == 0 and "flow_mods" in json.loads(out)
    code, out, _ = run(served, "health", token=False)
    assert code == 0 and out.strip() == "ready"


def test_usage_errors_exit_2(served):
    assert run(served, "tenants", "create", "x")[0] == 2  # --vni/--vlan missing
    assert run(served, "tenants", "update", "blue")[0] == 2  # nothing to change
    code, _, err = run(served, "tenants", "create", "x", "--vni", "1", "--vlan", "2", "--vlan-on", "h1")
    assert code == 2 and "HOST=VLAN" in err


def test_an_unreachable_api_exits_3():
    port = free_tcp_ports(1, "127.0.0.1")[0]
    err = io.StringIO()
    code = cli.main(["tenants", "list"], out=io.StringIO(), err=err, env={"OVERLAY_URL": f"http://127.0.0.1:{port}"})
    assert code == 3 and "cannot reach the API" in err.getvalue()


def test_names_are_quoted_into_the_url(served):
    code, _, err = run(served, "tenants", "show", "a b?c")
    assert code == 1 and "no tenant named 'a b?c'" in err

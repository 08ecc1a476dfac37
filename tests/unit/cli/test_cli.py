"""overlayctl against the real WSGI app served over HTTP in a thread: commands, formats, columns, completion."""

import io
import json
import subprocess
import sys
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import yaml

from controller.cli import completion
from controller.cli import main as cli
from controller.model.state import Endpoint
from controller.northbound.auth import TokenAuth
from controller.northbound.pathtrace import Request, trace
from controller.northbound.rest import Api
from lab.netlab import free_tcp_ports
from tests.unit.api_backend import Backend, seeded
from tests.unit.northbound.test_pathtrace import learned
from tests.unit.world import mac

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


def test_token_from_file_env_or_missing(served, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "DEFAULT_TOKEN_FILE", str(tmp_path / "not-there"))
    code, _, err = run(served, "tenants", "list", token=False)
    assert code == 1 and "HTTP 401" in err and "--token-file" in err  # says where a token comes from
    path = tmp_path / "tok"
    path.write_text(TOKEN + "\n")
    assert run(served, "--token-file", str(path), "tenants", "list", token=False)[0] == 0
    code, _, err = run(served, "--token-file", str(tmp_path / "nope"), "tenants", "list")
    assert code == 2 and "token file" in err


def test_on_the_controllers_machine_the_token_it_made_is_read_by_default(served, tmp_path, monkeypatch):
    made = tmp_path / "api.token"  # what the controller writes at its first start
    made.write_text(TOKEN + "\n")
    monkeypatch.setattr(cli, "DEFAULT_TOKEN_FILE", str(made))
    assert run(served, "tenants", "list", token=False)[0] == 0
    code, _, err = run(served, "tenants", "list", token=False, env={"OVERLAY_TOKEN": "other"})
    assert code == 1 and "HTTP 401" in err and "--token-file" not in err  # a token was given: no hint
    made.chmod(0o000)
    monkeypatch.setattr(cli, "DEFAULT_TOKEN_FILE", str(tmp_path / "nope" / "api.token"))
    assert run(served, "tenants", "list", token=False)[0] == 1  # none readable: no token, no crash


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


@pytest.mark.parametrize("url", ["127.0.0.1:28080", "localhost:8080", "ftp://127.0.0.1/", "http://"])
def test_a_url_that_is_not_http_is_a_usage_error(served, url):
    """Not 3 (unreachable): the operator typed it wrong, and nothing was tried (#22.8)."""
    for argv, env in ((["--url", url, "tenants", "list"], {}), (["tenants", "list"], {"OVERLAY_URL": url})):
        code, out, err = run(served, *argv, env=env)
        assert code == 2 and out == "" and "must be an http:// or https:// URL" in err and repr(url) in err


def test_an_unreachable_api_exits_3():
    port = free_tcp_ports(1, "127.0.0.1")[0]
    err = io.StringIO()
    code = cli.main(["tenants", "list"], out=io.StringIO(), err=err, env={"OVERLAY_URL": f"http://127.0.0.1:{port}"})
    assert code == 3 and "cannot reach the API" in err.getvalue()


def test_names_are_quoted_into_the_url(served):
    code, _, err = run(served, "tenants", "show", "a b?c")
    assert code == 1 and "no tenant named 'a b?c'" in err


def test_formats_json_yaml_value_and_the_json_alias(served):
    _, as_json, _ = run(served, "tenants", "list", "-f", "json")
    assert run(served, "tenants", "list", "--json")[1] == as_json
    code, as_yaml, _ = run(served, "tenants", "list", "-f", "yaml")
    assert code == 0 and yaml.safe_load(as_yaml) == json.loads(as_json)
    assert as_yaml.startswith("- name: blue\n")
    code, value, _ = run(served, "tenants", "list", "-f", "value")
    assert code == 0 and value.splitlines() == ["blue 5001 10 all -", "red 5002 20 all -"]


def test_columns_pick_and_order_in_every_format(served):
    code, out, _ = run(served, "tenants", "list", "-c", "vni", "-c", "Name")
    assert code == 0 and out.splitlines() == ["VNI   NAME", "5001  blue", "5002  red"]
    assert run(served, "tenants", "list", "-f", "value", "-c", "name")[1].split() == ["blue", "red"]
    _, out, _ = run(served, "hosts", "list", "-f", "json", "-c", "overlay_ip", "-c", "id")
    assert json.loads(out) == [{"overlay_ip": "10.99.0.1", "id": "host1"}, {"overlay_ip": "10.99.0.2", "id": "host2"}]
    _, out, _ = run(served, "hosts", "list", "-f", "yaml", "-c", "overlay-ip")
    assert yaml.safe_load(out) == [{"overlay_ip": "10.99.0.1"}, {"overlay_ip": "10.99.0.2"}]


def test_an_unknown_column_is_a_usage_error_that_lists_the_columns(served):
    before = len(served.api.b.applied)
    code, out, err = run(served, "tenants", "delete", "blue", "-c", "colour")
    assert code == 2 and out == "" and "no column 'colour'; columns: deleted" in err
    assert "blue" in served.api.b.core.tenants and len(served.api.b.applied) == before  # nothing was sent
    assert run(served, "tenants", "list", "-f", "xml")[0] == 2


def test_hosts_delete(served):
    code, _, err = run(served, "hosts", "delete", "host2")
    assert code == 1 and "still connected" in err
    served.api.b.core.ovsdb_down("host2")
    code, out, _ = run(served, "hosts", "delete", "host2")
    assert code == 0 and out.strip() == "host host2 forgotten" and "host2" not in served.api.b.core.hosts
    assert run(served, "hosts", "delete", "host2")[0] == 1


def test_update_and_delete_with_if_match(served):
    _, doc, _ = run(served, "tenants", "show", "blue", "-f", "json")
    code, _, err = run(served, "tenants", "update", "blue", "--vlan", "11", "--if-match", '"stale"')
    assert code == 1 and "HTTP 412" in err and served.api.b.core.tenants["blue"].vlan == 10
    code, _, err = run(served, "tenants", "delete", "blue", "--if-match", "*")
    assert code == 0 and "blue" not in served.api.b.core.tenants


def test_endpoints_of_one_host(served):
    code, out, _ = run(served, "endpoints", "blue", "--host", "host1", "-f", "value", "-c", "mac")
    assert code == 0 and out.split() == ["02:00:00:00:00:01"]
    assert run(served, "endpoints", "blue", "--host", "host2", "-f", "value")[1] == ""


def test_topology_tree_and_rows(served):
    code, out, _ = run(served, "topology")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "host host1 (10.99.0.1) ovsdb up, openflow down"
    assert lines.index("tenant blue (VNI 5001, VLAN 10, on every host)") < lines.index(
        "tenant red (VNI 5002, VLAN 20, on every host)")
    blue = lines.index("tenant blue (VNI 5001, VLAN 10, on every host)")
    assert lines[blue + 1:blue + 4] == ["    host host1 (VLAN 10)",
                                        "        endpoint 02:00:00:00:00:01 10.0.0.1 (idle 10s)",
                                        "    host host2 (VLAN 10)"]
    code, out, _ = run(served, "topology", "-f", "value", "-c", "tenant", "-c", "host", "-c", "mac")
    assert [x for x in out.splitlines() if x.startswith("blue")] == ["blue host1 02:00:00:00:00:01", "blue host2 -"]


def test_trace_as_text_rows_and_json(served):
    served.api.b.core = learned()
    code, out, _ = run(served, "trace", "blue", mac(1), mac(2))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"# tenant blue (VNI 5001), unicast: {mac(1)} on h1 -> {mac(2)} on h2"
    assert "h1: br1, from br0 (patch), VLAN 10" in lines
    assert "h2: br1, from tunnel t1 (host h1), tunnel_id=5001" in lines
    unicast = next(i for i, x in enumerate(lines) if "20. unicast: eth_dst=02:00:00:00:00:02,vlan_vid=0x100a" in x)
    assert [x.strip() for x in lines[unicast + 1:unicast + 4]] == [  # one action a line, as ofproto/trace
        "pop_vlan", "set_field:0x1389->tunnel_id", "output:12"]
    assert any("-> output:12: tunnel t2 (vxlan) to h2 (10.99.0.2), tunnel_id=5001" in x for x in lines)
    assert lines[-1].startswith("Result: sent over 1 tunnel(s) to h2; delivered to br0 on h2 (VLAN 10)")
    code, out, _ = run(served, "trace", "blue", mac(1), "10.0.0.2", "--arp", "-f", "value")
    assert out.split() == ["h1", "br0", "0,1,18,4,5", "br0"]
    _, out, _ = run(served, "trace", "blue", mac(1), "ff:ff:ff:ff:ff:ff", "--json")
    assert json.loads(out) == trace(served.api.b.core.read, Request("blue", mac(1), "ff:ff:ff:ff:ff:ff"))
    code, _, err = run(served, "trace", "blue", mac(1), "10.0.0.99")
    assert code == 1 and "HTTP 404" in err and "arp: true" in err


def test_help_shows_every_command():
    script = Path(sys.executable).parent / "overlayctl"  # the installed console script
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("tenants", "hosts", "ports", "endpoints", "topology", "trace", "counters", "health", "completion",
                 "--format", "--column"):
        assert word in out


def complete(words: list[str]) -> list[str]:
    """What bash completes for the last word of `overlayctl words...`, with our script loaded."""
    script = completion.bash(cli.parser())
    line = " ".join(f"'{w}'" for w in ["overlayctl", *words])
    probe = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _overlayctl; "
             'printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize("words, want", [
    ([""], {"tenants", "hosts", "endpoints", "topology", "trace", "counters", "health", "completion"}),
    (["te"], {"tenants"}),
    (["tenants", ""], {"list", "show", "create", "update", "delete"}),
    (["hosts", "d"], {"delete"}),
    (["hosts", ""], {"list", "show", "vlans", "delete", "admit", "revoke"}),
    (["ports", ""], {"list", "show", "set", "delete"}),
    (["tenants", "create", "x", "--vl"], {"--vlan", "--vlan-on"}),
    (["--url", "http://x", "trace", "blue", "--a"], {"--arp"}),
    (["tenants", "list", "-f", ""], {"table", "json", "yaml", "value"}),
    (["completion", "b"], {"bash"}),
])
def test_bash_completion(words, want):
    got = set(complete(words))
    assert want <= got and (len(want) > 1 or got == want), got


def test_completion_bash_prints_the_script():
    out = io.StringIO()
    assert cli.main(["completion", "bash"], out=out) == 0
    assert out.getvalue().rstrip().endswith("complete -F _overlayctl overlayctl")


def test_hosts_admit_and_revoke(served):
    code, out, err = run(served, "hosts", "admit", "host7")
    assert code == 0 and out.strip() == "host host7 admitted (operator)", err
    assert served.api.b.store.host_records()[0] == {"host7": True}
    code, out, _ = run(served, "hosts", "revoke", "host7")
    assert code == 0 and out.startswith("host host7 not admitted: revoked by an operator")
    code, out, _ = run(served, "--json", "hosts", "revoke", "host7")
    assert json.loads(out)["admitted"] is False
    lines = run(served, "hosts", "list")[1].splitlines()
    assert "ADMITTED" in lines[0] and lines[1].split()[0] == "host1"


def test_ports_set_list_show_delete(served):
    code, out, err = run(served, "ports", "set", "host1", "vm1", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.1",
                         "--ip", "10.0.0.11")
    assert code == 0, err
    assert out.splitlines()[1].split() == ["vm1", "02:00:00:00:00:01", "10.0.0.1,10.0.0.11"]
    code, out, _ = run(served, "ports", "set", "host1", "vm2", "--mac", "02:00:00:00:00:02")
    assert out.splitlines()[1].split() == ["vm2", "02:00:00:00:00:02", "any"]
    code, out, _ = run(served, "--json", "ports", "list", "host1")
    assert [r["port"] for r in json.loads(out)] == ["vm1", "vm2"]
    assert run(served, "ports", "show", "host1", "vm2")[1].splitlines()[1].split()[0] == "vm2"
    code, out, _ = run(served, "ports", "delete", "host1", "vm2")
    assert code == 0 and out.strip() == "port rule host1/vm2 removed"
    code, _, err = run(served, "ports", "set", "host1", "vm3", "--mac", "ff:ff:ff:ff:ff:ff")
    assert code == 1 and "HTTP 400" in err and "unicast" in err
    code, _, _ = run(served, "ports", "set", "host1", "vm3")
    assert code == 2  # argparse: --mac is required

"""overlayctl's workflows against the real WSGI app over HTTP: apply/diff/export of a file (with the
line of a refused field), --wait and status (exit 4 naming the hosts that lag), --may-exist and
--if-exists, -o everywhere, the documented exit codes, and events (resumed after a broken stream)."""

import io
import json
import socket
import threading

import pytest
import yaml

from controller.cli import events as cli_events
from controller.cli import main as cli
from controller.cli.overlay_file import FileError, loads
from controller.model.state import Tenant
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend
from tests.unit.cli.test_cli import Served
from tests.unit.world import world

FILE = """\
# the overlay, as kept in git
version: 1
tenants:
  blue:
    vni: 5001
    vlan: 10
  red: {vni: 5002, vlan: 20, hosts: [h1, h2], vlans: {h2: 21}}
"""


@pytest.fixture
def served(tmp_path):
    backend = Backend(str(tmp_path / "w.db"))
    backend.core = world(3, tenants=())  # three hosts whose switches are programmed (no tenant yet)
    s = Served(Api(backend))
    yield s
    s.close()


def run(served, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err, env={"OVERLAY_URL": served.url})
    return code, out.getvalue(), err.getvalue()


def file_at(tmp_path, text, name="overlay.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_file_gives_each_field_its_line():
    f = loads(FILE, "o.yaml")
    assert f.doc["tenants"]["red"]["vlans"] == {"h2": 21}
    assert (f.line_of(("tenants", "blue", "vlan")), f.line_of(("tenants", "red", "hosts", 1))) == (6, 7)
    assert f.line_of(("tenants", "blue", "nope", 3)) == 4  # the nearest field the file has
    for text, line, words in [
        (FILE.replace("vlan: 10", "vlan: 10000"), 6, "tenants.blue.vlan: 'vlan' must be an integer"),
        (FILE.replace("hosts: [h1, h2]", "hosts: [h1, 'a/b']"), 7, "tenants.red.hosts[1]"),
        (FILE + "hosts: {h7: {}}\n", 8, "hosts.h7.admitted: 'admitted' is required"),
        (FILE + "hosts: {h7: {admitted: true}}\nports:\n  h7:\n    vm1: {macs: [01:00:5e:00:00:01]}\n", 11,
         "ports.h7.vm1.macs[0]: 'macs[0]' must be a unicast MAC"),
        (FILE + "ports:\n  h7:\n    vm1: {macs: [02:00:00:00:00:01], ips: [10.0.0.1, 224.0.0.1]}\n", 10,
         "ports.h7.vm1.ips[1]: 'ips': '224.0.0.1' is not a unicast"),
        (FILE + "  blue: {vni: 1, vlan: 1}\n", 8, "tenants.blue is given twice (first at line 4)"),
        (FILE + "  green: [1, 2\n", 9, "not valid YAML"),
    ]:
        with pytest.raises(FileError) as e:
            loads(text, "o.yaml").check()
        assert str(e.value).startswith(f"o.yaml:{line}: ") and words in str(e.value), (str(e.value), line)


def test_apply_diff_export_and_twice_is_nothing(served, tmp_path):
    path = file_at(tmp_path, FILE)
    code, out, _ = run(served, "diff", "-f", path)
    assert code == 1 and out.splitlines() == [
        "+ blue: VNI 5001, VLAN 10, on every host", "+ red: VNI 5002, VLAN 20, VLAN 21 on h2, on hosts h1,h2"]
    code, out, err = run(served, "apply", "-f", path, "--wait")
    assert code == 0 and "tenant blue created" in out and "revision 1" in out, err
    assert "revision 1 is live: every host's switch holds it (3 of 3)" in err
    applied = len(served.api.b.applied)
    code, out, _ = run(served, "apply", "-f", path, "-o", "json")
    doc = json.loads(out)
    assert code == 0 and (doc["applied"], doc["changes"], doc["unchanged"], doc["revision"]) == (False, False, 2, 1)
    assert len(served.api.b.applied) == applied  # no operation at all
    assert run(served, "diff", "-f", path) == (0, "no changes\n(2 tenant(s) as in the file)\n", "")
    code, out, _ = run(served, "export")
    assert code == 0 and yaml.safe_load(out) == yaml.safe_load(FILE) | {"hosts": {}, "ports": {}}
    assert run(served, "apply", "-f", file_at(tmp_path, out, "exported.yaml"))[1].startswith("nothing to change")
    code, out, _ = run(served, "export", "-o", "json")
    assert json.loads(out)["tenants"]["blue"] == {"vni": 5001, "vlan": 10}
    # a change and a prune
    code, out, _ = run(served, "diff", "-f", file_at(tmp_path, FILE.replace("vlan: 10", "vlan: 11").split("  red")[0]),
                       "--prune")
    assert code == 1 and out.splitlines() == ["~ blue: vlan: 10 -> 11",
                                              "- red: VNI 5002, VLAN 20, VLAN 21 on h2, on hosts h1,h2"]


HOSTS = """\
hosts:
  h2: {admitted: false}
  h9: {admitted: true}
ports:
  h1:
    vm1: {macs: ["02:00:00:00:00:01"], ips: [10.0.0.1]}
"""


def test_diff_and_apply_say_what_changes_in_admissions_and_port_rules(served, tmp_path):
    path = file_at(tmp_path, FILE + HOSTS)
    code, out, _ = run(served, "diff", "-f", path)
    assert code == 1 and out.splitlines()[2:] == [
        "+ host h2: revoked", "+ host h9: admitted", "+ port h1/vm1: MACs 02:00:00:00:00:01; 10.0.0.1"]
    code, out, err = run(served, "apply", "-f", path)
    assert code == 0 and "host h9 created: admitted" in out and "port h1/vm1 created: MACs" in out, err
    assert served.api.b.store.host_records()[0] == {"h2": False, "h9": True}
    assert run(served, "diff", "-f", path)[:2] == (0, "no changes\n(2 tenant(s) as in the file)\n"
                                                     "(2 host decision(s) as in the file)\n"
                                                     "(1 port rule(s) as in the file)\n")
    # a change in the host sections alone is a change (exit 1); without --prune the rest is kept
    code, out, _ = run(served, "diff", "-f", file_at(tmp_path, FILE + "hosts: {h2: {admitted: true}}\nports: {}\n",
                                                    "h2.yaml"))
    assert code == 1 and "~ host h2: revoked -> admitted" in out
    assert "(port rule(s) not in the file, kept: h1/vm1 (--prune deletes them))" in out
    code, out, _ = run(served, "diff", "-f", file_at(tmp_path, FILE + "ports: {}\n", "p.yaml"), "--prune")
    assert code == 1 and out.splitlines()[0] == "- port h1/vm1: MACs 02:00:00:00:00:01; 10.0.0.1"
    assert "host decision" not in out  # the file has no 'hosts': not its to prune
    code, out, _ = run(served, "export")
    assert yaml.safe_load(out) == yaml.safe_load(FILE + HOSTS)


def test_a_file_the_api_refuses_is_named_at_its_line_and_changes_nothing(served, tmp_path):
    x = Tenant("x", 5001, 99)  # not in the file; kept without --prune
    served.api.b.store.put_tenant(x)
    served.api.b.core.put_tenant(x)
    before = (served.api.b.store.tenants(), served.api.b.store.revision)
    path = file_at(tmp_path, FILE)
    code, _, err = run(served, "apply", "-f", path)
    assert code == 1 and err.startswith(f"overlayctl: {path}:5: tenants.blue.vni: VNI 5001 is used by tenant 'x'")
    assert "(HTTP 409)" in err
    assert (served.api.b.store.tenants(), served.api.b.store.revision) == before  # red was not written either
    code, _, err = run(served, "diff", "-f", path)
    assert code == 5 and ":5: tenants.blue.vni" in err  # diff: 1 means "would change", nothing else
    code, _, err = run(served, "apply", "-f", file_at(tmp_path, FILE.replace("5002", "5001"), "bad.yaml"))
    assert code == 2 and "bad.yaml:7: tenants.red.vni: VNI 5001 is tenant 'blue''s too" in err  # nothing sent
    code, _, err = run(served, "apply", "-f", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read it" in err
    assert run(served, "apply")[0] == 2  # no -f: usage


def test_wait_and_status_name_the_hosts_that_lag(served, tmp_path):
    b = served.api.b
    code, _, err = run(served, "tenants", "create", "blue", "--vni", "5001", "--vlan", "10", "--wait")
    assert code == 0 and "revision 1 is live" in err
    b.confirmed[2] = 0  # h2's switch has not confirmed revision 1 yet
    code, out, _ = run(served, "status")
    assert code == 4 and out.splitlines() == ["revision 1 is not live: 1 of 3 hosts do not hold revision 1 yet",
                                              "  h2: holds revision 0; its switch has not confirmed 1 yet"]
    code, out, err = run(served, "tenants", "update", "blue", "--vlan", "11", "--wait", "--timeout", "5")
    assert code == 4 and "h2: holds revision 0" in err and b.event_hub.waited == pytest.approx(5)
    code, out, _ = run(served, "status", "--revision", "0", "-o", "json")
    assert code == 0 and json.loads(out)["live"]
    b.core.datapath_down(3)
    code, out, _ = run(served, "status", "-o", "value", "-c", "host")
    assert code == 4 and out.split() == ["h2", "h3"]
    del b.confirmed[2]
    code, out, _ = run(served, "status", "-o", "json")
    assert json.loads(out)["lagging"] == [{"host": "h3", "revision": None,
                                            "reason": "disconnected: no OpenFlow connection from its br1"}]


def test_scripts_can_run_twice(served):
    create = ("tenants", "create", "blue", "--vni", "5001", "--vlan", "10")
    assert run(served, *create)[0] == 0
    code, _, err = run(served, *create)
    assert code == 1 and "already exists" in err
    assert run(served, *create, "--may-exist")[0] == 0
    code, _, err = run(served, "tenants", "create", "blue", "--vni", "5001", "--vlan", "12", "--may-exist")
    assert code == 1 and "vlan 10 (asked 12)" in err
    code, _, err = run(served, "tenants", "create", "green", "--vni", "5001", "--vlan", "12", "--may-exist")
    assert code == 1 and "VNI 5001 is already used" in err  # not there: the conflict as it is
    assert run(served, "tenants", "delete", "blue", "--if-exists") == (0, "tenant blue deleted\n", "")
    assert run(served, "tenants", "delete", "blue", "--if-exists") == (0, "tenant blue was not there\n", "")
    code, out, _ = run(served, "tenants", "delete", "blue", "--if-exists", "-o", "json")
    assert json.loads(out) == {"deleted": "blue", "existed": False}
    assert run(served, "tenants", "delete", "blue")[0] == 1
    assert run(served, "hosts", "delete", "nope", "--if-exists")[0] == 0


@pytest.mark.parametrize("argv", [("tenants", "list"), ("hosts", "list"), ("counters",), ("status",), ("export",),
                                  ("topology",)])
def test_output_json_and_yaml_everywhere(served, argv):
    for flag in ("-o", "--output"):
        code, out, _ = run(served, *argv, flag, "json")
        assert code in (0, 4) and json.loads(out) is not None
    code, out, _ = run(served, *argv, "-o", "yaml")
    assert code in (0, 4) and yaml.safe_load(out) is not None


def test_exit_codes(served, tmp_path):
    assert run(served, "tenants", "show", "nope")[0] == 1
    assert run(served, "tenants", "bogus")[0] == 2
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["tenants", "list"], out=out, err=err, env={"OVERLAY_URL": "http://127.0.0.1:1"}) == 3


def test_events_are_printed_as_they_come_and_a_broken_stream_resumes(served, monkeypatch):
    b = served.api.b
    for name, vni in (("a", 1), ("b", 2)):
        run(served, "tenants", "create", name, "--vni", str(vni), "--vlan", str(vni))
    code, out, _ = run(served, "events", "--no-follow", "-o", "json", "--kinds", "tenant_changed")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [(e["kind"], e["tenant"]) for e in lines] == [("tenant_changed", "a"), ("tenant_changed", "b")]
    code, out, _ = run(served, "events", "--no-follow", "--since", lines[0]["id"])
    assert out.split()[1:3] == ["tenant_changed", "tenant=b"]
    assert run(served, "events", "--kinds", "nope")[0] == 1  # the API names the kinds there are
    # A stream that breaks after one event (a proxy, a restart of the connection): overlayctl comes
    # back with Last-Event-ID and prints the next event once, nothing twice, nothing lost.
    asked: list[str | None] = []
    first = b.event_hub.since(b.event_hub.before_ring(), frozenset({"tenant_changed"}))[0]
    monkeypatch.setattr(cli_events, "RETRY_S", 0.01)
    port = flaky_events_server(first, asked)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["events", "--count", "2", "-o", "value"], out=out, err=err,
                    env={"OVERLAY_URL": f"http://127.0.0.1:{port}"})
    assert code == 0 and out.getvalue().split("\n")[:2] == [f"{e['id']} tenant_changed" for e in first]
    assert asked == [None, first[0]["id"]] and "resuming after" in err.getvalue()


def flaky_events_server(docs: list[dict], asked: list) -> int:
    """An SSE server that sends the event after Last-Event-ID (the first without one), then drops."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(2):
            conn, _ = srv.accept()
            with conn:
                head = conn.recv(65536).decode()
                last = next((ln.split(":", 1)[1].strip() for ln in head.split("\r\n")
                             if ln.lower().startswith("last-event-id:")), None)
                asked.append(last)
                ids = [d["id"] for d in docs]
                doc = docs[ids.index(last) + 1 if last in ids else 0]
                body = f"id: {doc['id']}\nevent: {doc['kind']}\ndata: {json.dumps(doc)}\n\n".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + body)
        srv.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]

"""The REST API of the real controller process (no switches): auth, limits, metrics, overlayctl."""

import http.client
import json
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.controller import Controller

TOKEN = "e2e-Secret-Token-4f9a"
OVERLAYCTL = Path(sys.executable).parent / "overlayctl"


def send(ctl: Controller, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(ctl.api.base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def as_json(raw: bytes):
    return json.loads(raw) if raw else None


@pytest.fixture
def start(tmp_path):
    made: list[Controller] = []

    def make(**overlay) -> Controller:
        workdir = tmp_path / f"ctl{len(made)}"
        workdir.mkdir()
        ctl = Controller("127.0.0.1", workdir=str(workdir), extra={"overlay": overlay})
        made.append(ctl)
        return ctl.start()

    yield make
    for ctl in made:
        ctl.stop(signal.SIGKILL)
        shutil.rmtree(ctl.workdir, ignore_errors=True)


def token_file(tmp_path) -> Path:
    path = tmp_path / "api.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


BLUE = json.dumps({"name": "blue", "vni": 5001, "vlan": 10}).encode()
JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_the_token_guards_writes_and_reads_and_never_reaches_the_log(start, tmp_path):
    ctl = start(api_token_file=token_file(tmp_path))
    assert send(ctl, "GET", "/v1/health")[0] == 200  # probes need no token
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, hdrs, raw = send(ctl, "POST", "/v1/tenants", BLUE, {**JSON, **headers})
        assert status == 401 and "token" in as_json(raw)["error"] and hdrs["WWW-Authenticate"].startswith("Bearer")
    assert send(ctl, "GET", "/v1/tenants")[0] == 401
    assert send(ctl, "GET", "/v1/tenants", headers=AUTH)[2] == b"[]\n"  # the 401s changed nothing
    assert send(ctl, "POST", "/v1/tenants", BLUE, {**JSON, **AUTH})[0] == 201
    assert send(ctl, "PATCH", "/v1/tenants/blue", b'{"vlan": 11}', {**JSON, **AUTH})[0] == 200
    assert send(ctl, "DELETE", "/v1/tenants/blue", headers=AUTH)[0] == 204
    ctl.stop()
    log = ctl.log_path.read_text()
    assert '"POST /v1/tenants HTTP/1.1" 201' in log  # the access log is on...
    assert TOKEN not in log and "Authorization" not in log and "Bearer" not in log  # ...and has no secrets


def test_read_open_lets_gets_through_but_not_writes(start, tmp_path):
    ctl = start(api_token_file=token_file(tmp_path), api_read_open="true")
    assert send(ctl, "GET", "/v1/tenants")[0] == 200
    assert send(ctl, "GET", "/metrics")[0] == 200
    assert send(ctl, "POST", "/v1/tenants", BLUE, JSON)[0] == 401
    assert send(ctl, "GET", "/v1/tenants")[2] == b"[]\n"


def test_a_missing_token_file_stops_the_controller_at_start(tmp_path):
    ctl = Controller("127.0.0.1", workdir=str(tmp_path), extra={"overlay": {"api_token_file": tmp_path / "nope"}})
    try:
        with pytest.raises(RuntimeError, match="exited"):
            ctl.start(timeout=20)
    finally:
        ctl.stop(signal.SIGKILL)


def test_oversized_and_wrongly_typed_bodies(start):
    ctl = start()
    status, _, raw = send(ctl, "POST", "/v1/tenants", b" " * (65 * 1024) + BLUE, JSON)
    assert status == 413 and "larger" in as_json(raw)["error"]
    status, _, raw = send(ctl, "POST", "/v1/tenants", BLUE, {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in as_json(raw)["error"]
    status, _, raw = send(ctl, "POST", "/v1/tenants", b"{nope", JSON)
    assert status == 400 and "malformed JSON" in as_json(raw)["error"]
    assert ctl.api.get("/v1/tenants") == []
    # no Content-Length: a chunked body is read up to the limit, no further
    assert chunked_post(ctl, [BLUE[:-1]] + [b" " * 1024] * 70 + [b"}"])[0] == 413
    assert ctl.api.get("/v1/tenants") == []
    assert chunked_post(ctl, [BLUE[:10], BLUE[10:]]) == (201, json.loads(BLUE) | {"hosts": None, "vlans": {}})


def chunked_post(ctl: Controller, chunks: list[bytes]):
    conn = http.client.HTTPConnection("127.0.0.1", ctl.rest_port, timeout=10)
    try:
        conn.request("POST", "/v1/tenants", body=iter(chunks), encode_chunked=True,
                     headers={**JSON, "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        return resp.status, as_json(resp.read())
    finally:
        conn.close()


def test_metrics_and_openapi_are_served(start):
    ctl = start()
    ctl.api.post("/v1/tenants", json.loads(BLUE))
    send(ctl, "GET", "/v1/tenants/ghost")
    status, headers, raw = send(ctl, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(raw.decode()) for s in f.samples}
    assert samples[("overlay_tenants", ())] == 1
    assert samples[("overlay_rest_requests_total", (("code", "404"), ("method", "GET"), ("route", "show_tenant")))] == 1
    # no switch, nothing proxied: the metric is there and mirrors the API's counter exactly
    assert samples[("overlay_arp_proxied_total", ())] == ctl.api.get("/v1/counters").get("arp_proxied", 0) == 0
    spec = ctl.api.get("/v1/openapi.json")
    assert spec["openapi"].startswith("3.") and "/v1/tenants/{name}" in spec["paths"]


def test_overlayctl_against_the_controller(start, tmp_path):
    ctl = start(api_token_file=token_file(tmp_path))

    def ctl_cmd(*args, token=True):
        env = {"PATH": "/usr/bin:/bin", "OVERLAY_URL": ctl.api.base}
        extra = ["--token-file", str(tmp_path / "api.token")] if token else []
        return subprocess.run([str(OVERLAYCTL), *extra, *args], capture_output=True, text=True, env=env, timeout=30)

    r = ctl_cmd("tenants", "create", "blue", "--vni", "5001", "--vlan", "10")
    assert r.returncode == 0, r.stderr
    r = ctl_cmd("tenants", "create", "blue", "--vni", "5002", "--vlan", "20")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = ctl_cmd("tenants", "list", token=False)
    assert r.returncode == 1 and "HTTP 401" in r.stderr
    r = ctl_cmd("--json", "tenants", "list")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["vni"] == 5001
    r = ctl_cmd("tenants", "delete", "blue")
    assert r.returncode == 0 and ctl.api.request("GET", "/v1/health")["tenants"] == 0

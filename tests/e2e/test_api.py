"""The REST API of the real controller process (no switches): auth (a token by default, the Host
header), limits, metrics, overlayctl, and one controller per configuration."""

import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.controller import OSKEN_MANAGER, REPO, Controller

TOKEN = "e2e-Secret-Token-4f9a"
OVERLAYCTL = Path(sys.executable).parent / "overlayctl"


def send(ctl: Controller, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
         token: bool = True):
    """One request; with the controller's token unless token=False or the headers say otherwise."""
    headers = dict(headers or {})
    if token and ctl.api.token:
        headers.setdefault("Authorization", f"Bearer {ctl.api.token}")
    req = urllib.request.Request(ctl.api.base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctl.api.context) as resp:
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
        status, hdrs, raw = send(ctl, "POST", "/v1/tenants", BLUE, {**JSON, **headers}, token=False)
        assert status == 401 and "token" in as_json(raw)["error"] and hdrs["WWW-Authenticate"].startswith("Bearer")
    assert send(ctl, "GET", "/v1/tenants", token=False)[0] == 401
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
    assert send(ctl, "GET", "/v1/tenants", token=False)[0] == 200
    assert send(ctl, "GET", "/metrics", token=False)[0] == 200
    assert send(ctl, "POST", "/v1/tenants", BLUE, JSON, token=False)[0] == 401
    assert send(ctl, "GET", "/v1/tenants", token=False)[2] == b"[]\n"


def test_a_missing_token_file_stops_the_controller_at_start(tmp_path):
    ctl = Controller("127.0.0.1", workdir=str(tmp_path), extra={"overlay": {"api_token_file": tmp_path / "nope"}})
    try:
        with pytest.raises(RuntimeError, match="exited"):
            ctl.start(timeout=20)
    finally:
        ctl.stop(signal.SIGKILL)


def test_a_fresh_controller_makes_a_token_and_refuses_writes_without_it(start):
    ctl = start()  # nothing about tokens in its config
    made = ctl.workdir / "api.token"
    token = made.read_text().strip()
    assert made.stat().st_mode & 0o777 == 0o600 and len(token) >= 40
    status, _, raw = send(ctl, "POST", "/v1/tenants", BLUE, JSON, token=False)
    assert status == 401 and "token" in as_json(raw)["error"]
    assert send(ctl, "DELETE", "/v1/tenants/blue", token=False)[0] == 401
    assert send(ctl, "GET", "/v1/tenants", token=False)[0] == 401  # reads too (api_read_open = false)
    assert send(ctl, "POST", "/v1/tenants", BLUE, {**JSON, "Authorization": f"Bearer {token}"}, token=False)[0] == 201
    log = ctl.log_path.read_text()
    assert f"REST API token generated in {made}" in log and token not in log
    assert_refused(ctl, token=3)


def test_the_token_can_be_turned_off_in_the_config(start):
    ctl = start(api_token="false")
    assert ctl.api.token is None and not (ctl.workdir / "api.token").exists()
    assert send(ctl, "POST", "/v1/tenants", BLUE, JSON)[0] == 201
    assert "REST API without a token ([overlay] api_token = false)" in ctl.log_path.read_text()


def test_a_foreign_host_header_is_refused(start):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends its own name."""
    ctl = start(api_token="false")  # even where no token would stop it
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        status, _, raw = send(ctl, "POST", "/v1/tenants", BLUE, {**JSON, "Host": host})
        assert status == 421 and "Host header" in as_json(raw)["error"], (host, raw)
    assert send(ctl, "GET", "/", headers={"Host": "evil.example"})[0] == 421  # the web view's page too
    assert send(ctl, "GET", "/v1/tenants")[2] == b"[]\n"
    for host in (f"127.0.0.1:{ctl.rest_port}", f"localhost:{ctl.rest_port}", socket.gethostname()):
        assert send(ctl, "GET", "/v1/tenants", headers={"Host": host})[0] == 200, host
    assert_refused(ctl, host=4)


def assert_refused(ctl: Controller, **expected: int) -> None:
    status, _, raw = send(ctl, "GET", "/metrics")
    samples = {s.labels["reason"]: s.value for f in text_string_to_metric_families(raw.decode())
               if f.name == "overlay_rest_refused" for s in f.samples}
    assert status == 200 and {r: samples[r] for r in expected} == expected, samples


def test_a_second_controller_with_the_same_config_stops_at_once_in_one_line(start, tmp_path):
    first = start()
    started = time.monotonic()
    second = subprocess.run([str(OSKEN_MANAGER), "apps/overlay.py", "--config-file", str(first.conf_path),
                             "--ofp-listen-host", first.listen_ip, "--ofp-tcp-listen-port", str(first.of_port)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    last = second.stderr.strip().splitlines()[-1]
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
    assert last == (f"overlay-controller: {first.workdir}/controller.lock is locked by pid {first.proc.pid}: "
                    "another controller runs on this state directory or database"), last
    # Another state directory, the same ports: the first port it cannot have, named with its option.
    other = tmp_path / "other"
    other.mkdir()
    conf = other / "overlay.conf"
    conf.write_text(first.conf_path.read_text().replace(str(first.workdir), str(other)))
    second = subprocess.run([str(OSKEN_MANAGER), "apps/overlay.py", "--config-file", str(conf),
                             "--ofp-listen-host", first.listen_ip, "--ofp-tcp-listen-port", str(first.of_port)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    last = second.stderr.strip().splitlines()[-1]
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
    assert last == (f"overlay-controller: {first.listen_ip}:{first.of_port} (ofp_tcp_listen_port) is already in "
                    "use: is another controller running with this configuration?"), last
    print(f"a second controller stopped in {took:.1f} s")
    # The first one still holds every port alone and serves.
    owners = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    for port in (first.of_port, first.ovsdb_port, first.rest_port):
        lines = [ln for ln in owners.splitlines() if f":{port} " in ln]
        assert len(lines) == 1 and f"pid={first.proc.pid}," in lines[0], lines
    assert send(first, "GET", "/v1/tenants")[0] == 200


def test_the_api_over_https(tmp_path, pki):
    """[tls] https: the API and its token over TLS, checked against the controller's CA; plain HTTP refused."""
    ctl = Controller("127.0.0.1", workdir=str(tmp_path), tls=pki, extra={"tls": {"https": "true"}})
    try:
        ctl.start()
        assert ctl.api.base.startswith("https://")
        assert ctl.api.post("/v1/tenants", json.loads(BLUE))["vni"] == 5001
        r = subprocess.run([str(OVERLAYCTL), "--url", ctl.api.base, "--ca-file", str(pki.controller_ca),
                            "--token-file", str(ctl.token_path), "--json", "tenants", "list"],
                           capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
        assert r.returncode == 0 and json.loads(r.stdout)[0]["name"] == "blue", r.stderr
        with pytest.raises(OSError):  # http:// on the HTTPS port: closed before a byte of HTTP
            urllib.request.urlopen(f"http://127.0.0.1:{ctl.rest_port}/v1/health", timeout=10)
        status, _, raw = send(ctl, "GET", "/metrics")  # over https, with the token
        assert status == 200
        refused = {(s.labels["channel"], s.labels["reason"]): s.value
                   for f in text_string_to_metric_families(raw.decode())
                   if f.name == "overlay_tls_handshakes_refused" for s in f.samples}
        assert refused == {("rest", "plain"): 1.0}
        assert "REST API on https://127.0.0.1:" in ctl.log_path.read_text()
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
                     headers={**JSON, "Transfer-Encoding": "chunked", "Authorization": f"Bearer {ctl.api.token}"})
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

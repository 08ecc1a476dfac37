"""Bearer-token auth: writes need it, reads too unless api_read_open; 401 changes nothing."""

import hmac
import logging
import os

import pytest

from controller.northbound.auth import TokenAuth
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, seeded, state

TOKEN = "s3cret-token-XYZ"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
NEW = {"name": "green", "vni": 7, "vlan": 30}


def token_file(tmp_path, text=TOKEN + "\n"):
    path = tmp_path / "token"
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def api(tmp_path):
    return seeded(Api(Backend(str(tmp_path / "a.db")), TokenAuth(token_file(tmp_path))))


@pytest.fixture
def read_open_api(tmp_path):
    return seeded(Api(Backend(str(tmp_path / "a.db")), TokenAuth(token_file(tmp_path), read_open=True)))


WRITES = [("POST", "/v1/tenants", NEW), ("PUT", "/v1/tenants/blue", {"vni": 9, "vlan": 9}),
          ("PATCH", "/v1/tenants/blue", {"vni": 9}), ("DELETE", "/v1/tenants/blue", None),
          ("DELETE", "/v1/hosts/host1", None)]
READS = ["/v1/tenants", "/v1/tenants/blue", "/v1/tenants/blue/endpoints", "/v1/hosts", "/v1/hosts/host1",
         "/v1/hosts/host1/vlans", "/v1/counters", "/metrics"]
BAD_HEADERS = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
               {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"},
               {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": "Bearer \u00e9\u00e9"}]


@pytest.mark.parametrize("method,path,body", WRITES)
@pytest.mark.parametrize("headers", BAD_HEADERS)
def test_writes_without_the_token_are_401_and_change_nothing(api, method, path, body, headers):
    before = state(api)
    status, reply = call(api, method, path, body, headers=headers)
    assert status == 401 and "token" in reply["error"]
    assert state(api) == before


@pytest.mark.parametrize("method,path,body", WRITES)
def test_writes_with_the_token_go_through(api, method, path, body):
    api.b.core.ovsdb_down("host1")  # only a host that went away may be deleted
    assert call(api, method, path, body, headers=GOOD)[0] in (200, 201, 204)


@pytest.mark.parametrize("path", READS)
def test_reads_need_the_token_unless_read_open(api, read_open_api, path):
    assert call(api, "GET", path)[0] == 401
    assert call(api, "GET", path, headers=GOOD)[0] == 200
    assert call(read_open_api, "GET", path)[0] == 200


def test_read_open_still_guards_writes(read_open_api):
    before = state(read_open_api)
    assert call(read_open_api, "POST", "/v1/tenants", NEW)[0] == 401
    assert state(read_open_api) == before


def test_health_and_the_description_stay_open(api):
    assert call(api, "GET", "/v1/health")[0] == 200
    assert call(api, "GET", "/v1/openapi.json")[0] == 200


def test_401_says_bearer(api):
    from webob import Request
    resp = Request.blank("/v1/tenants").get_response(api)
    assert resp.status_int == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.content_type == "application/json"


def test_auth_comes_before_body_checks(api):
    """An anonymous caller learns nothing from validation: 401, not 400/413/415."""
    assert call(api, "POST", "/v1/tenants", raw=b"{bad", headers={})[0] == 401
    assert call(api, "POST", "/v1/tenants", raw=b"x", content_type="text/plain")[0] == 401


def test_the_token_is_compared_in_constant_time(api, monkeypatch):
    seen = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)
    monkeypatch.setattr("controller.northbound.auth.hmac.compare_digest", spy)
    call(api, "GET", "/v1/tenants", headers={"Authorization": "Bearer nope"})
    assert seen == [(b"nope", TOKEN.encode())]


def test_no_token_file_means_no_auth(tmp_path):
    api = Api(Backend(str(tmp_path / "a.db")))
    assert call(api, "POST", "/v1/tenants", NEW)[0] == 201


def test_a_missing_or_empty_token_file_stops_the_start(tmp_path):
    with pytest.raises(FileNotFoundError):
        TokenAuth(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="empty"):
        TokenAuth(token_file(tmp_path, "  \n"))


def test_a_rotated_token_is_picked_up_and_a_removed_one_fails_closed(tmp_path, caplog):
    path = token_file(tmp_path)
    api = Api(Backend(str(tmp_path / "a.db")), TokenAuth(path))
    new = tmp_path / "token.new"
    new.write_text("rotated-token")
    os.replace(new, path)  # how an operator (or a secret manager) swaps it atomically
    assert call(api, "GET", "/v1/tenants", headers=GOOD)[0] == 401
    assert call(api, "GET", "/v1/tenants", headers={"Authorization": "Bearer rotated-token"})[0] == 200
    os.unlink(path)
    with caplog.at_level(logging.ERROR):
        assert call(api, "GET", "/v1/tenants", headers={"Authorization": "Bearer rotated-token"})[0] == 401
    assert "rotated-token" not in caplog.text


def test_a_world_readable_token_file_is_warned_about(tmp_path, caplog):
    path = token_file(tmp_path)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        TokenAuth(path)
    assert "chmod 600" in caplog.text and TOKEN not in caplog.text


def test_the_token_never_reaches_the_log(api, caplog):
    with caplog.at_level(logging.DEBUG):
        for headers in ([GOOD] + BAD_HEADERS):
            call(api, "POST", "/v1/tenants", {"name": "x y"}, headers=headers)
        api.list_tenants = lambda req: 1 / 0  # the error path logs a traceback
        call(api, "GET", "/v1/tenants", headers=GOOD)
    assert "list_tenants failed" in caplog.text and TOKEN not in caplog.text


def test_the_api_binds_to_loopback_unless_told_otherwise():
    from controller.shell import config
    host = next(o for o in config.WSAPI_OPTS if o.name == "wsapi-host")
    opts = {o.name: o for o in config.OVERLAY_OPTS}
    assert host.default == "127.0.0.1"
    assert opts["api-token-file"].default is None and opts["api-read-open"].default is False

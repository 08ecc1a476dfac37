"""The Host header is one of the listener's own names: a page whose DNS name was re-pointed at
127.0.0.1 (DNS rebinding) sends its own name and gets 421 with a JSON message, counted."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webob import Request

from controller.northbound import metrics
from controller.northbound.auth import HostNames, host_of
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call, seeded, state


@pytest.mark.parametrize("header,name", [("127.0.0.1:8080", "127.0.0.1"), ("[::1]:8080", "::1"), ("[::1]", "::1"),
                                         ("LocalHost.", "localhost"), ("ctl.example.com:443", "ctl.example.com"),
                                         ("ctl", "ctl")])
def test_the_name_in_a_host_header(header, name):
    assert host_of(header) == name


def test_a_loopback_listener_answers_to_loopback_names_and_its_host_names():
    names = HostNames("127.0.0.1", ["ctl-1"])
    for ok in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "ctl-1:8080", "CTL-1", None):
        assert names.allows(ok), ok
    for bad in ("evil.example:8080", "127.0.0.1.evil.example", "10.0.0.1:8080", "localhost.evil", ""):
        assert not names.allows(bad), bad


def test_a_listener_on_one_address_answers_to_it_only():
    names = HostNames("10.0.0.5", ["ctl-1"])
    assert names.allows("10.0.0.5:8080") and names.allows("ctl-1")
    assert not names.allows("localhost:8080") and not names.allows("10.0.0.6:8080")


def test_a_wildcard_listener_answers_to_any_address_literal_but_not_to_other_names():
    names = HostNames("0.0.0.0", ["ctl-1"])
    for ok in ("10.0.0.5:8080", "[fe80::1]:8080", "localhost", "ctl-1"):
        assert names.allows(ok), ok
    assert not names.allows("evil.example")


def _refused(prom: metrics.Metrics) -> dict[str, float]:
    text = prom.render(metrics.Snapshot()).decode()
    return {s.labels["reason"]: s.value for f in text_string_to_metric_families(text)
            if f.name == "overlay_rest_refused" for s in f.samples}


def test_a_foreign_host_gets_421_and_changes_nothing(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "h.db")), names=HostNames("127.0.0.1")))
    before = state(api)
    status, reply = call(api, "POST", "/v1/tenants", {"name": "green", "vni": 7, "vlan": 30},
                         headers={"Host": "rebound.evil.example:8080"})
    assert status == 421 and "rebound.evil.example" in reply["error"] and "api_host_names" in reply["error"]
    assert call(api, "GET", "/v1/tenants", headers={"Host": "rebound.evil.example"})[0] == 421
    assert call(api, "GET", "/", headers={"Host": "rebound.evil.example"})[0] == 421  # the page too
    assert state(api) == before
    assert call(api, "GET", "/v1/tenants", headers={"Host": "127.0.0.1:8080"})[0] == 200
    assert _refused(api.prom) == {"host": 2 + 1, "token": 0}


def test_the_metrics_listener_checks_the_host_too(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "h.db"))))
    listener = metrics.Listener(api.b, api.prom, HostNames("127.0.0.1"))
    resp = Request.blank("/metrics", headers={"Host": "evil.example:9108"}).get_response(listener)
    assert resp.status == "421 Misdirected Request" and "evil.example" in resp.json["error"]
    assert Request.blank("/metrics", headers={"Host": "localhost:9108"}).get_response(listener).status_int == 200
    assert _refused(api.prom)["host"] == 1

"""/metrics: Prometheus exposition text with what the core knows and what the API answered."""

from prometheus_client.parser import text_string_to_metric_families
from webob import Request

from controller.rest import Api
from controller.state import Endpoint
from tests.unit.api_backend import Backend, call, seeded


def scrape(api) -> dict[tuple[str, tuple], float]:
    resp = Request.blank("/metrics").get_response(api)
    assert resp.status_int == 200 and resp.content_type == "text/plain"
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_gauges_follow_the_core(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "m.db"))))
    api.b.core.datapaths.add(1)  # host1's br1 is connected over OpenFlow
    api.b.core.ix.add_endpoint(Endpoint(5001, "02:00:00:00:00:01", "host1", 10, 0.0))
    m = scrape(api)
    assert m[("overlay_hosts", ())] == 2
    assert m[("overlay_hosts_connected", (("channel", "openflow"),))] == 1
    assert m[("overlay_hosts_connected", (("channel", "ovsdb"),))] == 2
    assert m[("overlay_tenants", ())] == 2
    assert m[("overlay_endpoints", ())] == 1


def test_counters_are_exported_and_switch_side_ones_are_zero_until_present(tmp_path):
    api = Api(Backend(str(tmp_path / "m.db")))
    m = scrape(api)
    for name in ("arp_proxied", "nd_proxied", "floods_suppressed", "floods_sent", "flow_mods", "mac_moves"):
        assert m[(f"overlay_{name}_total", ())] == 0
    c = api.b.core.counters
    c.update({"packet_in": 10, "packet_in_unknown_vlan": 3, "packet_in_malformed": 1, "flow_mods": 42,
              "arp_proxied": 5, "nd_proxied": 2, "floods_suppressed": 7, "brand_new": 9})
    m = scrape(api)
    assert m[("overlay_packet_ins_total", ())] == 10
    assert m[("overlay_packet_ins_by_reason_total", (("reason", "unknown_vlan"),))] == 3
    assert m[("overlay_packet_ins_by_reason_total", (("reason", "malformed"),))] == 1
    assert m[("overlay_flow_mods_total", ())] == 42
    assert m[("overlay_arp_proxied_total", ())] == 5
    assert m[("overlay_nd_proxied_total", ())] == 2
    assert m[("overlay_floods_suppressed_total", ())] == 7
    assert m[("overlay_core_events_total", (("name", "brand_new"),))] == 9


def test_rest_requests_are_counted_by_status(tmp_path):
    api = Api(Backend(str(tmp_path / "m.db")))
    call(api, "POST", "/v1/tenants", {"name": "a", "vni": 1, "vlan": 1})
    call(api, "POST", "/v1/tenants", {"name": "a", "vni": 1, "vlan": 1})
    call(api, "GET", "/v1/nothing")
    call(api, "BREW", "/v1/tenants")  # a client-chosen method must not become a label
    m = scrape(api)
    key = "overlay_rest_requests_total"
    assert m[(key, (("code", "201"), ("method", "POST"), ("route", "create_tenant")))] == 1
    assert m[(key, (("code", "409"), ("method", "POST"), ("route", "create_tenant")))] == 1
    assert m[(key, (("code", "404"), ("method", "GET"), ("route", "unmatched")))] == 1
    assert m[(key, (("code", "405"), ("method", "other"), ("route", "unmatched")))] == 1


def test_two_apis_do_not_share_metrics(tmp_path):
    a, b = Api(Backend(str(tmp_path / "a.db"))), Api(Backend(str(tmp_path / "b.db")))
    call(a, "GET", "/v1/tenants")
    assert not any(k[0] == "overlay_rest_requests_total" and ("route", "list_tenants") in k[1]
                   for k in scrape(b))

"""/metrics: Prometheus exposition text with what the core knows, what the app timed and what the API answered."""

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webob import Request

from controller.core.switch_state import SwitchDump
from controller.ha.roles import Roles
from controller.model.state import Endpoint
from controller.northbound import metrics
from controller.northbound.rest import Api
from controller.shell import startup
from controller.shell.leadership import Leadership
from controller.shell.listeners import Refusals
from controller.shell.looplag import LoopLag
from controller.version import __version__
from tests.unit.api_backend import Backend, call, seeded


def scrape(app, path="/metrics") -> dict[tuple[str, tuple], float]:
    resp = Request.blank(path).get_response(app)
    assert resp.status_int == 200 and resp.content_type == "text/plain"
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def names(m) -> set[str]:
    return {name for name, _ in m}


def test_per_host_gauges_follow_the_core(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "m.db"))))
    core = api.b.core
    core.datapath_up(1)  # host1's br1 connects over OpenFlow and gets its flows; host2's does not
    core.switch_read(1, SwitchDump(), now=0.0)
    core.hosts["host2"].ovsdb_connected = False
    core.ix.add_endpoint(Endpoint(5001, "02:00:00:00:00:01", "host1", 10, 0.0))
    m = scrape(api)
    host = "overlay_host_connected"
    assert m[(host, (("channel", "ovsdb"), ("host", "host1")))] == 1
    assert m[(host, (("channel", "openflow"), ("host", "host1")))] == 1
    assert m[(host, (("channel", "ovsdb"), ("host", "host2")))] == 0
    assert m[(host, (("channel", "openflow"), ("host", "host2")))] == 0
    installed = core.installed[1].flow_count()
    assert installed > 0
    assert m[("overlay_host_flows", (("host", "host1"),))] == installed
    assert m[("overlay_host_flows", (("host", "host2"),))] == 0
    assert m[("overlay_tenants", ())] == 2
    assert m[("overlay_endpoints", ())] == 1
    assert m[("overlay_build_info", (("version", __version__),))] == 1


def test_packet_ins_per_host_and_their_handling_time(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "m.db"))))
    for seconds in (0.0002, 0.0003, 0.004):
        api.prom.packet_in(1, seconds)
    api.prom.packet_in(0xAB, 0.0001)  # a switch no host has claimed over OVSDB yet
    m = scrape(api)
    assert m[("overlay_packet_ins_total", (("host", "host1"),))] == 3
    assert m[("overlay_packet_ins_total", (("host", "host2"),))] == 0
    assert m[("overlay_packet_ins_total", (("host", "dpid:00000000000000ab"),))] == 1
    h = "overlay_packet_in_duration_seconds"
    assert m[(h + "_count", ())] == 4
    assert m[(h + "_sum", ())] == pytest.approx(0.0046)
    assert m[(h + "_bucket", (("le", "0.00025"),))] == 2
    assert m[(h + "_bucket", (("le", "0.005"),))] == 4
    api.prom.datapath_gone(0xAB)
    assert ("overlay_packet_ins_total", (("host", "dpid:00000000000000ab"),)) not in scrape(api)


def test_flow_programming_is_timed_from_send_to_barrier_reply():
    now = [100.0]
    prom = metrics.Metrics(clock=lambda: now[0])
    prom.barrier_sent(1, 7)
    prom.barrier_sent(2, 7)  # same xid, other switch
    now[0] = 100.25
    prom.barrier_replied(1, 7)
    prom.barrier_replied(1, 99)  # never sent (or already forgotten): not a sample
    prom.datapath_gone(2)
    prom.barrier_replied(2, 7)  # the switch went away meanwhile
    snap = metrics.Snapshot()
    m = {(s.name, tuple(sorted(s.labels.items()))): s.value
         for fam in text_string_to_metric_families(prom.render(snap).decode()) for s in fam.samples}
    h = "overlay_flow_programming_duration_seconds"
    assert m[(h + "_count", ())] == 1
    assert m[(h + "_sum", ())] == pytest.approx(0.25)
    assert m[(h + "_bucket", (("le", "0.1"),))] == 0
    assert m[(h + "_bucket", (("le", "0.25"),))] == 1


def test_a_barrier_confirming_earlier_writes_is_timed_from_the_first_of_them():
    now = [100.0]
    prom = metrics.Metrics(clock=lambda: now[0])
    prom.barrier_sent(1, 8, since=99.5)  # writes waited from 99.5 for the barrier before it
    now[0] = 100.5
    prom.barrier_replied(1, 8)
    m = {(s.name, tuple(sorted(s.labels.items()))): s.value
         for fam in text_string_to_metric_families(prom.render(metrics.Snapshot()).decode()) for s in fam.samples}
    assert m[("overlay_flow_programming_duration_seconds_sum", ())] == pytest.approx(1.0)


def test_pending_barriers_are_bounded():
    prom = metrics.Metrics(clock=lambda: 0.0)
    for xid in range(metrics.MAX_PENDING_BARRIERS + 10):
        prom.barrier_sent(1, xid)
    assert len(prom._barriers) == metrics.MAX_PENDING_BARRIERS
    assert (1, 0) not in prom._barriers and (1, metrics.MAX_PENDING_BARRIERS + 9) in prom._barriers


def test_reconciles_are_timed(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "m.db"))))
    for seconds in (0.02, 45.0):  # the app's pump times each run of draining the core's dirty work
        api.prom.reconciled(seconds)
    m = scrape(api)
    assert m[("overlay_reconcile_duration_seconds_count", ())] == 2
    assert m[("overlay_reconcile_duration_seconds_bucket", (("le", "60.0"),))] == 2
    assert m[("overlay_reconcile_duration_seconds_bucket", (("le", "30.0"),))] == 1


def test_counters_are_exported_and_switch_side_ones_are_zero_until_present(tmp_path):
    api = Api(Backend(str(tmp_path / "m.db")))
    m = scrape(api)
    for key, (name, _) in metrics.NAMED_COUNTERS.items():
        assert m[(f"{name}_total", ())] == 0, key
    c = api.b.core.counters
    c.update({"packet_in": 10, "packet_in_unknown_vlan": 3, "packet_in_malformed": 1, "flow_mods": 42,
              "arp_proxied": 5, "nd_proxied": 2, "floods_suppressed": 7, "brand_new": 9})
    m = scrape(api)
    assert m[("overlay_packet_ins_not_learned_total", (("reason", "unknown_vlan"),))] == 3
    assert m[("overlay_packet_ins_not_learned_total", (("reason", "malformed"),))] == 1
    assert m[("overlay_flow_mods_total", ())] == 42
    assert m[("overlay_arp_proxied_total", ())] == 5
    assert m[("overlay_nd_proxied_total", ())] == 2
    assert m[("overlay_floods_suppressed_total", ())] == 7
    # Nothing re-exports the core's counters wholesale: a new one is exported once it is named.
    assert not any("brand_new" in str(k) for k in m)
    assert "overlay_core_events_total" not in names(m)


def test_every_metric_follows_the_naming_conventions(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "m.db"))))
    resp = Request.blank("/metrics").get_response(api)
    for family in text_string_to_metric_families(resp.text):
        if not family.name.startswith("overlay_"):
            continue
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert "_by_" not in family.name, f"{family.name}: a label, not a name"


def test_the_default_process_collectors_are_there(tmp_path):
    m = names(scrape(Api(Backend(str(tmp_path / "m.db")))))
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
            "python_info", "python_gc_collections_total"} <= m


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
    a.prom.packet_in(1, 0.001)
    m = scrape(b)
    assert not any(k[0] == "overlay_rest_requests_total" and ("route", "list_tenants") in k[1] for k in m)
    assert m[("overlay_packet_in_duration_seconds_count", ())] == 0


def test_the_metrics_listener_serves_metrics_only_and_read_only(tmp_path):
    api = seeded(Api(Backend(str(tmp_path / "m.db"))))
    listener = metrics.Listener(api.b, api.prom)
    api.prom.packet_in(1, 0.001)
    m = scrape(listener)
    assert m[("overlay_packet_ins_total", (("host", "host1"),))] == 1  # the same metrics as the API's
    assert Request.blank("/metrics", method="HEAD").get_response(listener).status_int == 200
    for method, path, status in (("POST", "/metrics", 405), ("DELETE", "/metrics", 405),
                                 ("GET", "/v1/tenants", 404), ("POST", "/v1/tenants", 404)):
        resp = Request.blank(path, method=method).get_response(listener)
        assert resp.status_int == status and "error" in resp.json, (method, path)
    assert Request.blank("/metrics", method="POST").get_response(listener).headers["Allow"] == "GET, HEAD"
    assert len(api.b.store.tenants()) == 2  # nothing changed


def app_backend(tmp_path, ha: bool = True) -> Backend:
    """A backend whose metrics hold every collector the app registers (startup.collectors), with HA on:
    every metric the controller can export (#22.7: the dashboard's test once missed the leader's)."""
    backend = Backend(str(tmp_path / "m.db"))
    for collector in startup.collectors(LoopLag(), Leadership(Roles(ha, "c1")), Refusals()):
        backend.metrics.register(collector)
    return backend


def test_no_label_clashes_with_the_labels_prometheus_sets_on_every_target(tmp_path):
    """A scraped `instance` or `job` label is renamed exported_*, and queries on it find nothing (#22.7)."""
    resp = Request.blank("/metrics").get_response(seeded(Api(app_backend(tmp_path))))
    labels = {(f.name, label) for f in text_string_to_metric_families(resp.text)
              for s in f.samples for label in s.labels}
    assert ("overlay_leader", "instance_name") in labels
    assert {(name, label) for name, label in labels if label in ("instance", "job")} == set()


def test_the_grafana_dashboard_is_built_on_these_metrics_and_shows_every_one(tmp_path):
    dashboard = json.loads((Path(__file__).resolve().parents[3] / "contrib" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", n)
            for e in exprs for n in re.findall(r"\b((?:overlay|process)_[a-z_]+)\b(?!\s*\()", e)}
    resp = Request.blank("/metrics").get_response(seeded(Api(app_backend(tmp_path))))
    exported = {}
    for family in text_string_to_metric_families(resp.text):
        exported[family.name + ("_total" if family.type == "counter" else "")] = family.type
    assert used - set(exported) == set(), "the dashboard queries metrics nobody exports"
    assert {n for n in exported if n.startswith("overlay_")} - used == set(), "metrics the dashboard does not show"

"""The operator's view on a real lab: per-host metrics that match the switches, a read-only metrics
listener, and hosts that cannot join listed with the reason instead of being ignored."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from lab.netlab import free_tcp_ports, wait_for
from lab.overlay import announce


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_per_host_match_the_switches_and_are_scraped_read_only(make_overlay):
    (port,) = free_tcp_ports(1, "127.0.0.1")
    ov = make_overlay("vxlan", "controller", hosts=2,
                      extra={"overlay": {"metrics_host": "127.0.0.1", "metrics_port": port}})
    announce(ov.tenant_vms("blue"))
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(lambda: all(scrape(url)[("overlay_packet_ins_total", (("host", h.name),))] > 0 for h in ov.hosts),
             10, 0.1, "packet-ins counted on every host")

    def flows_agree() -> bool:  # the gauge against what the switch holds
        m = scrape(url)
        return all(m[("overlay_host_flows", (("host", h.name),))]
                   == len(h.ofctl("dump-flows", "br1", "--no-stats").strip().splitlines()) for h in ov.hosts)
    wait_for(flows_agree, 10, 0.2, "overlay_host_flows equals the flows in each br1")
    m = scrape(url)
    for h in ov.hosts:
        assert m[("overlay_host_connected", (("channel", "openflow"), ("host", h.name)))] == 1
        assert m[("overlay_host_connected", (("channel", "ovsdb"), ("host", h.name)))] == 1
        assert m[("overlay_host_flows", (("host", h.name),))] > 0
    # Every batch was answered by its barrier, and reconciles were timed.
    assert m[("overlay_flow_programming_duration_seconds_count", ())] > 0
    assert m[("overlay_reconcile_duration_seconds_count", ())] > 0
    assert m[("overlay_packet_in_duration_seconds_count", ())] >= 2
    # The listener serves nothing else and changes nothing.
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/tenants", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("the metrics listener accepted a POST")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    assert len(ov.ctl.api.get("/v1/tenants")) == 2


def test_hosts_that_cannot_join_are_listed_with_the_reason(make_overlay):
    ov = make_overlay("vxlan", "controller", hosts=2)
    h1, h2 = ov.hosts

    def host(name: str | None) -> dict | None:
        return next((h for h in ov.ctl.api.get("/v1/hosts") if h["id"] == name), None)

    h1.vsctl("set", "Open_vSwitch", ".", "external_ids:overlay-ip=10.0.0.300")
    doc = wait_for(lambda: (d := host(h1.name)) and not d["joined"] and d, 10, 0.1, "h1 listed as not joined")
    assert doc["reason"] == "external_ids:overlay-ip '10.0.0.300' is not an IPv4 address"
    h2.vsctl("del-br", "br0")
    doc = wait_for(lambda: (d := host(h2.name)) and not d["joined"] and d, 10, 0.1, "h2 listed as not joined")
    assert doc["reason"] == "no bridge br0"
    h2.vsctl("remove", "Open_vSwitch", ".", "external_ids", "system-id")
    doc = wait_for(lambda: host(None), 10, 0.1, "the host without a system-id listed")
    assert not doc["joined"] and doc["reason"].startswith("no external_ids:system-id") and doc["peer"]
    assert host(h2.name)["connected"]["ovsdb"] is False  # the host it was is gone from that connection
    log = ov.ctl.log_tail(400)
    assert log.count("not an IPv4 address") == 1 and log.count("no external_ids:system-id") == 1, log


def test_rest_requests_leave_nothing_frozen_for_good(make_overlay):
    # The ticker freezes what survived every quarter second (controller/shell/loop.py); garbage
    # frozen is never freed. Each REST request leaves cycles behind (about 80 objects): before
    # they were collected first, these 60 requests kept 4,513 objects for good. Paced as a
    # dashboard or a probe polls: at 10 a second, no young collection comes between most
    # requests and the next freeze (300 at once kept almost nothing either way). A freeze is
    # seen as a collection of the middle generation, which each one makes when all is quiet.
    (port,) = free_tcp_ports(1, "127.0.0.1")
    ov = make_overlay("vxlan", "controller", hosts=1,
                      extra={"overlay": {"metrics_host": "127.0.0.1", "metrics_port": port}})
    url = f"http://127.0.0.1:{port}/metrics"

    def frozen_and_freezes() -> tuple[float, float]:
        m = scrape(url)
        return m[("overlay_gc_frozen_objects", ())], m[("python_gc_collections_total", (("generation", "1"),))]

    def freezes_after(n: float) -> bool:  # each freeze collects the middle generation first
        return frozen_and_freezes()[1] >= n + 2

    wait_for(lambda: ov.ctl.api.get("/v1/status")["live"], 10, 0.1, "the host programmed")
    _, freezes = frozen_and_freezes()
    wait_for(lambda: freezes_after(freezes), 5, 0.05, "two freezes")
    before, _ = frozen_and_freezes()
    requests = 60
    for _ in range(requests):
        ov.ctl.api.get("/v1/tenants")
        time.sleep(0.1)  # the pace of the load, not a wait for a condition
    _, freezes = frozen_and_freezes()
    wait_for(lambda: freezes_after(freezes), 5, 0.05, "two freezes after the requests")
    after, _ = frozen_and_freezes()
    # A request that straddles a freeze still keeps its cycles (a few in 60): far below 80 each.
    assert after - before < requests * 10, f"{after - before:.0f} objects frozen for {requests} requests"

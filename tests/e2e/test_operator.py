"""The operator's view on a real lab: per-host metrics that match the switches, a read-only metrics
listener, and hosts that cannot join listed with the reason instead of being ignored."""

from __future__ import annotations

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

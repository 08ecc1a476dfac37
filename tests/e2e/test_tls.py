"""TLS on the control channels, on the real lab: hosts join over ssl: on both channels with
certificates made by ovs-pki (one CA per lab run) and their tenants ping; a host whose certificate
another CA signed, and a host on plain TCP, are refused on both channels, counted in /metrics and
logged once (per peer and minute), never with a traceback, and never become hosts."""

from __future__ import annotations

import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.controller import Controller
from lab.netlab import Lab, wait_for
from lab.overlay import Overlay, create_tenants, reachable_pairs
from lab.pki import HostTls


@pytest.fixture(scope="module")
def ov():
    lab = Lab()
    ctl = None
    try:
        ctl = Controller(lab.controller_ip, tls=lab.pki).start()  # [tls] set: TLS only on OpenFlow and OVSDB
        create_tenants(ctl)
        overlay = Overlay(lab, ctl)
        for _ in range(2):
            overlay.add_host()  # ssl: with lab.pki.host_tls("hN"): CN = the system-id
        overlay.wait_meshed(settle=True)
        yield overlay
    finally:
        if ctl is not None:
            print(f"--- controller log ({ctl.log_path})\n{ctl.log_tail(40)}")
            ctl.stop()
        lab.close()
        if ctl is not None:
            shutil.rmtree(ctl.workdir, ignore_errors=True)


def refused(ctl: Controller) -> dict[tuple[str, str], float]:
    text = ctl.metrics_text()
    return {(s.labels["channel"], s.labels["reason"]): s.value for f in text_string_to_metric_families(text)
            if f.name == "overlay_tls_handshakes_refused" for s in f.samples}


def log_lines(ctl: Controller, text: str) -> list[str]:
    return [ln for ln in ctl.log_path.read_text(errors="replace").splitlines() if text in ln]


def test_hosts_join_over_tls_on_both_channels_and_their_tenants_ping(ov: Overlay):
    for h in ov.hosts:
        assert h.vsctl("get", "Controller", ".", "target").strip() == f'"ssl:{ov.ctl.listen_ip}:{ov.ctl.of_port}"'
        assert h.vsctl("get", "Manager", ".", "target").strip() == f'"ssl:{ov.ctl.listen_ip}:{ov.ctl.ovsdb_port}"'
    hosts = {h["id"]: h for h in ov.ctl.api.get("/v1/hosts")}
    assert sorted(hosts) == ["h1", "h2"]
    assert all(h["connected"] == {"ovsdb": True, "openflow": True} and h["joined"] for h in hosts.values())
    for tenant in ("blue", "red"):
        vms = ov.tenant_vms(tenant)
        assert len(reachable_pairs(vms)) == len(vms) * (len(vms) - 1), tenant
    log = ov.ctl.log_path.read_text()
    assert "OpenFlow on" in log and "TLS (certificates signed by [tls] ca_certificate)" in log
    assert "plain TCP too" not in log and "Traceback" not in log


def test_a_host_with_a_certificate_of_another_ca_is_refused_on_both_channels(ov: Overlay, foreign_pki):
    before = refused(ov.ctl)
    key, cert = foreign_pki.host("h8")  # CN h8, but not signed by this lab's switchca
    rogue = ov.lab.add_host("h8", of_port=ov.ctl.of_port, ovsdb_port=ov.ctl.ovsdb_port,
                            tls=HostTls(key, cert, ov.lab.pki.controller_ca))  # it trusts our controller
    try:
        def grew(channel: str, n: int) -> bool:
            now = refused(ov.ctl)
            return now.get((channel, "certificate"), 0) - before.get((channel, "certificate"), 0) >= n
        # It retries every second: several refusals each, counted every time...
        wait_for(lambda: grew("openflow", 3) and grew("ovsdb", 2), 30, 0.2,
                 f"the foreign certificate refused on both channels: {refused(ov.ctl)}\n{ov.ctl.log_tail()}")
        # ...logged once per channel (within the minute), and never a host.
        for channel in ("openflow", "ovsdb"):
            lines = log_lines(ov.ctl, f"{channel} connection from {rogue.mgmt_ip} refused")
            assert len(lines) == 1 and "CERTIFICATE_VERIFY_FAILED" in lines[0], lines
        assert [h["id"] for h in ov.ctl.api.get("/v1/hosts")] == ["h1", "h2"]
        assert "Traceback" not in ov.ctl.log_path.read_text()
    finally:
        ov.lab.remove_host(rogue)


def test_a_host_on_plain_tcp_is_refused_where_tls_is_required(ov: Overlay):
    before = refused(ov.ctl)
    plain = ov.lab.add_host("h7", of_port=ov.ctl.of_port, ovsdb_port=ov.ctl.ovsdb_port)  # tcp: both
    try:
        def refusals(channel: str) -> float:
            now = refused(ov.ctl)
            return sum(n - before.get(k, 0) for k, n in now.items() if k[0] == channel)
        # OpenFlow speaks first (HELLO): refused as plain at once. A tcp: OVSDB peer waits for the
        # manager to speak: refused as plain at its first probe, or when the handshake time is up.
        wait_for(lambda: refused(ov.ctl).get(("openflow", "plain"), 0) > before.get(("openflow", "plain"), 0)
                 and refusals("ovsdb") >= 1, 30, 0.2, f"plain TCP refused on both channels: {refused(ov.ctl)}")
        assert [h["id"] for h in ov.ctl.api.get("/v1/hosts")] == ["h1", "h2"]
        assert log_lines(ov.ctl, f"openflow connection from {plain.mgmt_ip} refused: plain TCP where TLS is required")
        assert "Traceback" not in ov.ctl.log_path.read_text()
    finally:
        ov.lab.remove_host(plain)
    # The hosts that joined with their certificates were never disturbed.
    for tenant in ("blue", "red"):
        vms = ov.tenant_vms(tenant)
        assert len(reachable_pairs(vms)) == len(vms) * (len(vms) - 1), tenant

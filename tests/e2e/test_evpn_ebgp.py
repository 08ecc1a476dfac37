"""#22.12 on the real lab, under eBGP: the FRR leaf (AS 65001) sends our own routes back to us (AS
65000). They are dropped (our AS in their AS_PATH), counted per route and said once in the log,
instead of os-ken logging each whole UPDATE at ERROR. The leaf's own routes still count.

One OVS host with a blue VM, the leaf with a blue host; tests/e2e/test_evpn.py runs the rest (iBGP).
"""

from __future__ import annotations

import shutil

from lab.controller import Controller
from lab.frr import add_leaf
from lab.netlab import Lab, free_tcp_ports, wait_for
from lab.overlay import TENANTS, Overlay, announce, create_tenants

OUR_AS, LEAF_AS = 65000, 65001
FAR_MAC = "02:00:00:00:05:01"


def test_our_routes_sent_back_by_an_ebgp_peer_are_counted_and_said_once():
    lab = Lab()
    ctl = None
    try:
        bgp_port, = free_tcp_ports(1, lab.controller_ip)
        leaf = add_leaf(lab, "leaf", asn=LEAF_AS, peer_ip=lab.controller_ip, peer_as=OUR_AS, peer_port=bgp_port,
                        hold=3)
        ctl = Controller(lab.controller_ip, extra={"bgp": {
            "local_as": OUR_AS, "router_id": lab.controller_ip, "listen_host": lab.controller_ip,
            "listen_port": bgp_port, "neighbors": f"{leaf.mgmt_ip}:{LEAF_AS}"}})
        ctl.start()
        create_tenants(ctl, {"blue": TENANTS["blue"]})
        ov = Overlay(lab, ctl)
        ov.add_host({"blue": TENANTS["blue"]})
        ov.wait_meshed()
        vni = TENANTS["blue"][0]
        leaf.add_vni(vni)
        far = leaf.add_host("bfar", vni, "192.168.1.50/24", FAR_MAC)
        wait_for(lambda: leaf.session_up(lab.controller_ip), 30, 0.2, f"eBGP session up\n{ctl.log_tail()}")
        vm = ov.vms[("blue", 1)]
        announce([vm])
        far.exec(["arping", "-U", "-c", "1", "-w", "1", "-I", "eth0", far.ip], check=False)
        leaf.neighbour(far, vni)

        def counters() -> dict:
            return ctl.api.get("/v1/counters")
        # ours at the leaf (it sends them back at once), the leaf's at ours
        wait_for(lambda: any(r["mac"] == vm.mac for r in leaf.evpn_routes() if r["type"] == 2), 10, 0.1,
                 "our VM's route at the leaf")
        wait_for(lambda: counters().get("evpn_own_routes_looped", 0) >= 2, 10, 0.1,
                 f"our routes back from the leaf, counted\n{ctl.log_tail()}")
        wait_for(lambda: any(e["mac"] == FAR_MAC for e in ctl.api.get("/v1/tenants/blue/endpoints")), 10, 0.1,
                 "the leaf's host imported")
        looped = counters()["evpn_own_routes_looped"]
        log = ctl.log_path.read_text(errors="replace")
        assert "has loops" not in log, [line for line in log.splitlines() if "has loops" in line][:3]
        said = [line for line in log.splitlines() if "own routes back" in line]
        assert len(said) == 1, said
        print(f"\neBGP: {looped} of our routes came back from the leaf: counted, one log line: {said[0]}")
    finally:
        if ctl is not None:
            print(f"--- controller log ({ctl.log_path})\n{ctl.log_tail(30)}")
            ctl.stop()
        lab.close()
        if ctl is not None:
            shutil.rmtree(ctl.workdir, ignore_errors=True)

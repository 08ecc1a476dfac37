"""Issue 10 on the real lab: switching a running overlay between mesh and flow-based tunnel ports."""

import re
import time

import pytest

from lab.netlab import wait_for
from lab.overlay import all_pairs, reachable_pairs

INTERVAL = 0.02  # seconds between the other tenant's echoes


def ports_are(h, ports: str) -> bool:
    got = h.tunnel_ports().values()
    if ports == "flow":
        return [p["remote_ip"] for p in got] == ["flow"] and all(p["ofport"] for p in got)
    return len(got) == 2 and all(p["remote_ip"] != "flow" and p["ofport"] for p in got)


@pytest.mark.parametrize("mode", ["controller", "learn"])
def test_switching_mesh_to_flow_and_back_live_costs_the_other_tenant_under_a_second(make_overlay, mode):
    ov = make_overlay("vxlan", mode)
    blue, red = ov.tenant_vms("blue"), ov.tenant_vms("red")
    assert reachable_pairs(blue) == all_pairs(blue) and reachable_pairs(red) == all_pairs(red)
    assert all(ports_are(h, "mesh") for h in ov.hosts)
    log = f"/tmp/switch-{ov.lab.prefix}.txt"
    for source, target in (("mesh", "flow"), ("flow", "mesh")):
        # red keeps pinging (5 s of echoes) while the overlay switches under it
        red[0].exec(["rm", "-f", log])  # a lab prefix may be reused: no file of an earlier run
        red[0].exec(["sh", "-c", f"ping -n -c 250 -i {INTERVAL} -W 1 {red[1].ip} > {log} 2>&1 < /dev/null &"])
        started = time.monotonic()
        ov.ctl.reload(tunnel_ports=target)
        for h in ov.hosts:
            wait_for(lambda h=h, target=target: ports_are(h, target), 5.0, 0.05, f"{h.name} switched to {target}")
        took = time.monotonic() - started
        early = red[0].exec(["cat", log]).stdout
        assert "packets transmitted" not in early, (took, early)  # the echoes span the switch
        text = wait_for(lambda: "packets transmitted" in (t := red[0].exec(["cat", log]).stdout) and t,
                        15.0, 0.1, "red's pings finished")
        red[0].exec(["rm", "-f", log])
        sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", text).groups())
        assert sent == 250 and (sent - received) * INTERVAL <= 1.0, text
        print(f"{mode}: {source} -> {target}: red lost {sent - received} of {sent} echoes; switched in {took:.2f} s")
        assert reachable_pairs(blue) == all_pairs(blue)
        assert reachable_pairs(red) == all_pairs(red)
    assert "config reload refused" not in ov.ctl.log_tail(200)

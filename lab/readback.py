"""What real switches answer when the controller reads them back, recorded for the unit tests.

The 3-host lab with both tenants and every VM learned; for each host, br1's raw replies to the
controller's read-back requests (controller/ofmsg.read_switch: flows with cookies, groups,
meters) as Open vSwitch sent them, with what the controller knew of the hosts (GET /v1/hosts),
the tenants and the endpoints. tests/unit/core/test_core_hitless.py runs the replies through the
app's read-back path into a fresh core. Refresh it after a change to the pipeline (as root):

    flock /tmp/overlay-lab.lock .venv/bin/python -m lab.readback tests/unit/core/fixtures/readback.json
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from controller.southbound import ofmsg
from lab.controller import Controller
from lab.netlab import Lab, wait_for
from lab.overlay import TENANTS, Overlay, announce, create_tenants


def record(ov: Overlay) -> dict[str, Any]:
    tenants = ov.ctl.api.get("/v1/tenants")
    return {
        "overlay": {k: ov.ctl.sections["overlay"][k] for k in ("tunnel_type", "mac_learning", "tunnel_ports")},
        "tenants": [{k: t[k] for k in ("name", "vni", "vlan")} for t in tenants],
        "hosts": ov.ctl.api.get("/v1/hosts"),
        "endpoints": {t["name"]: sorted([e["mac"], e["host"], sorted(e["ips"])]
                                        for e in ov.ctl.api.get(f"/v1/tenants/{t['name']}/endpoints"))
                      for t in tenants},
        "replies": {h.datapath_id: [reply.hex() for request in ofmsg.read_switch() for reply in h.openflow(request)]
                    for h in ov.hosts},
    }


def main(argv: list[str] | None = None) -> int:
    out = Path((argv if argv is not None else sys.argv[1:])[0])
    lab = Lab()
    ctl = Controller(lab.controller_ip)
    try:
        ctl.start()
        create_tenants(ctl)
        ov = Overlay(lab, ctl)
        for _ in range(3):
            ov.add_host()
        ov.wait_meshed(settle=True)
        announce(list(ov.vms.values()))
        wait_for(lambda: all(len(ctl.api.get(f"/v1/tenants/{t}/endpoints")) == len(ov.tenant_vms(t))
                             for t in TENANTS), 10, 0.1, "every VM learned")
        out.write_text(json.dumps(record(ov), indent=1, sort_keys=True) + "\n")
    finally:
        ctl.stop()
        lab.close()
        shutil.rmtree(ctl.workdir, ignore_errors=True)
    print(f"{out}: the read-back of {len(ov.hosts)} switches")
    return 0


if __name__ == "__main__":
    sys.exit(main())

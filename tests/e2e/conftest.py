import os
import shutil

import pytest

from lab.controller import Controller
from lab.netlab import Lab
from lab.overlay import Overlay, create_tenants

if os.geteuid() != 0 or not shutil.which("ovs-vswitchd"):
    pytest.exit("the end-to-end tests need root and Open vSwitch: run ./setup.sh as root", returncode=2)


@pytest.fixture
def make_overlay(request):
    """make_overlay(tunnel_type, mac_learning, hosts=3) -> Overlay; everything is torn down after."""
    made: list[tuple[Lab, Controller]] = []

    def make(tunnel_type: str = "vxlan", mac_learning: str = "controller", hosts: int = 3,
             same_macs: bool = False, tenants: bool = True, **ctl_opts) -> Overlay:
        lab = Lab()
        ctl = Controller(lab.controller_ip, tunnel_type=tunnel_type, mac_learning=mac_learning, **ctl_opts)
        made.append((lab, ctl))
        ctl.start()
        if tenants:
            create_tenants(ctl)
        ov = Overlay(lab, ctl)
        for _ in range(hosts):
            ov.add_host(same_macs=same_macs)
        if hosts:
            ov.wait_meshed(settle=True)
        return ov

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for lab, ctl in made:
        if failed:
            print(f"--- controller log ({ctl.log_path})\n{ctl.log_tail(80)}")
        ctl.stop()
        lab.close()
        shutil.rmtree(ctl.workdir, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep

"""No silent refusals: hosts that cannot join are listed by GET /v1/hosts and overlayctl, with the reason."""

import io

from controller.cli import main as cli
from controller.model.state import HostView
from controller.northbound.rest import Api
from controller.southbound import ovsdb_model as om
from tests.unit.api_backend import Backend, call, seeded
from tests.unit.cli.test_cli import Served

NO_BR1 = "no bridge br1"
NO_IP = "no external_ids:overlay-ip (its underlay IPv4 address)"


def api_with_strays(tmp_path) -> Api:
    api = seeded(Api(Backend(str(tmp_path / "h.db"))))
    api.b.core.host_view(HostView("host3", None, problems=(NO_IP, NO_BR1)), now=0)
    api.b.unidentified["10.0.0.9:41000"] = om.NO_SYSTEM_ID
    return api


def test_hosts_list_says_who_has_not_joined_and_why(tmp_path):
    status, hosts = call(api_with_strays(tmp_path), "GET", "/v1/hosts")
    assert status == 200
    by = {h["id"]: h for h in hosts}
    assert by["host1"]["joined"] is True and by["host1"]["reason"] is None
    assert by["host3"]["joined"] is False
    assert by["host3"]["reason"] == f"{NO_IP}; {NO_BR1}"
    stray = by[None]
    assert stray["peer"] == "10.0.0.9:41000" and stray["joined"] is False and stray["reason"] == om.NO_SYSTEM_ID
    assert stray["connected"] == {"ovsdb": True, "openflow": False} and stray["tunnels"] == []
    status, one = call(api_with_strays(tmp_path), "GET", "/v1/hosts/host3")
    assert status == 200 and one["joined"] is False and NO_BR1 in one["reason"]


def test_overlayctl_hosts_list_shows_the_reason(tmp_path):
    served = Served(api_with_strays(tmp_path))
    try:
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(["hosts", "list"], out=out, err=err, env={"OVERLAY_URL": served.url}) == 0
    finally:
        served.close()
    lines = out.getvalue().splitlines()
    assert lines[0].split()[-1] == "JOINED"
    row = {line.split()[0]: line for line in lines[1:]}
    assert row["host1"].endswith("yes")
    assert row["host3"].endswith(f"no: {NO_IP}; {NO_BR1}")
    assert row["(10.0.0.9:41000)"].endswith(f"no: {om.NO_SYSTEM_ID}")

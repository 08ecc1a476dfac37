"""contrib/sdn-overlay.service: systemd accepts it, rates it hardened, its user can read what the
documented install gives it, and the controller lives with its syscall filter and W^X.

systemd is not PID 1 on the test machine, so the unit is checked offline (`systemd-analyze verify`,
`systemd-analyze security --offline=true`) and its seccomp filters are applied by
tests/unit/unit_sandbox.py, the way systemd would before it execs the service.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.controller import ApiError, Client  # overlayctl's client, wherever the relayout puts it
from lab.fakes import FakeOvsdbHost, FakeSwitch
from lab.netlab import free_tcp_ports, wait_for
from tests.unit.unit_sandbox import unit_settings

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "sdn-overlay.service"
SYSUSERS = REPO / "contrib" / "sdn-overlay.sysusers"
INSTALL_DOC = REPO / "docs" / "operator" / "installing.md"
MAX_EXPOSURE = 2.5

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


def _local_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's overlay-controller (/opt/sdn-overlay is not here)."""
    text = UNIT.read_text().replace("/opt/sdn-overlay/bin/", f"{Path(sys.executable).parent}/")
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def test_systemd_accepts_the_unit(tmp_path):
    r = subprocess.run(["systemd-analyze", "verify", str(_local_copy(tmp_path))], capture_output=True, text=True)
    # An unknown or misspelt key is only a warning (exit 0): any output fails.
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_the_unit_is_hardened(tmp_path):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(_local_copy(tmp_path))],
                       capture_output=True, text=True, check=True)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert m, r.stdout[-2000:]
    assert float(m.group(1)) <= MAX_EXPOSURE, f"exposure {m.group(1)}:\n" + "\n".join(
        line for line in r.stdout.splitlines() if line.startswith("✗"))


def test_systemctl_reload_sends_sighup():
    assert unit_settings(UNIT)["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def _user_and_groups(tmp_path: Path) -> tuple[str, set[str]]:
    """The unit's user and its groups, as contrib/sdn-overlay.sysusers creates them."""
    settings = unit_settings(UNIT)
    user = settings["User"][-1]
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run(["systemd-sysusers", f"--root={root}", str(SYSUSERS)], capture_output=True, check=True)
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[2]: line.split(":")[0] for line in (root / "etc/group").read_text().splitlines()}
    assert user in passwd, f"contrib/sdn-overlay.sysusers does not create User={user}"
    primary = groups[passwd[user][3]]
    assert settings.get("Group", [primary])[-1] == primary
    assert "DynamicUser" not in settings, "a dynamic UID cannot own the token file or read a 0640 config"
    return user, {primary, *" ".join(settings.get("SupplementaryGroups", [])).split()}


def _documented(path: str) -> tuple[int, str, str]:
    """(mode, owner, group) the install steps in docs/operator/installing.md give `path`."""
    blocks = re.findall(r"^```sh\n(.*?)^```", INSTALL_DOC.read_text(), re.S | re.M)
    for line in "\n".join(blocks).splitlines():
        words = shlex.split(line, comments=True)
        if "install" in words and path in words:
            args = words[words.index("install") + 1:]
            opts = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i] in ("-m", "-o", "-g")}
            return int(opts.get("-m", "755"), 8), opts.get("-o", "root"), opts.get("-g", "root")
    raise AssertionError(f"docs/operator/installing.md installs no {path}")


def _readable(mode: int, owner: str, group: str, user: str, groups: set[str]) -> bool:
    if owner == user:
        return bool(mode & 0o400)
    return bool(mode & 0o040) if group in groups else bool(mode & 0o004)


def test_the_documented_install_gives_the_units_user_its_config_and_token(tmp_path):
    user, groups = _user_and_groups(tmp_path)
    conf = _documented("/etc/sdn-overlay/overlay.conf")
    assert _readable(*conf, user, groups), f"User={user} ({groups}) cannot read a config {conf}"
    assert not conf[0] & 0o002 and conf[1] != user, "the service must not be able to change its own config"
    token = _documented("/etc/sdn-overlay/api.token")
    assert _readable(*token, user, groups), f"User={user} cannot read a token {token}"
    assert not token[0] & 0o077, "the controller warns about a token file readable by group or others"
    assert "--config-file /etc/sdn-overlay/overlay.conf" in unit_settings(UNIT)["ExecStart"][-1]


def test_the_controller_lives_with_the_units_syscall_filter_and_wx_protection(tmp_path):
    of_port, ovsdb_port, rest_port = free_tcp_ports(3, "127.0.0.1")
    conf = tmp_path / "overlay.conf"
    conf.write_text(f"[DEFAULT]\nwsapi_host = 127.0.0.1\nwsapi_port = {rest_port}\n"
                    f"[ovsdb]\naddress = 127.0.0.1\nport = {ovsdb_port}\n"
                    f"[overlay]\nstate_dir = {tmp_path}\nadmitted_hosts = h1\n")  # the host below, by name
    log = tmp_path / "controller.log"
    controller = Path(sys.executable).parent / "overlay-controller"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.unit_sandbox", str(UNIT), "--", str(controller),
             "--config-file", str(conf), "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(of_port)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    api = Client(f"http://127.0.0.1:{rest_port}")
    switch = host = None

    def ready() -> bool:
        assert proc.poll() is None, f"the controller exited:\n{log.read_text()[-3000:]}"
        try:
            return bool(api.get("/v1/health")["ready"])
        except (OSError, ApiError):
            return False

    try:
        wait_for(ready, 60, interval=0.2, message="a healthy /v1/health under the unit's filters")
        api.token = (tmp_path / "api.token").read_text().strip()  # made at the first start
        assert int(open(f"/proc/{proc.pid}/status").read().split("Seccomp:")[1].split()[0]) == 2  # filtering
        api.post("/v1/tenants", {"name": "blue", "vni": 5001, "vlan": 10})
        host = FakeOvsdbHost(("127.0.0.1", ovsdb_port), "h1", "10.0.0.1", dpid=1).start()
        switch = FakeSwitch(("127.0.0.1", of_port), dpid=1).start()
        wait_for(lambda: api.get("/v1/hosts/h1")["connected"] == {"ovsdb": True, "openflow": True}, 20,
                 message="h1 connected on both channels")
        switch.echo()
        conf.write_text(conf.read_text() + "tunnel_ports = flow\n")
        os.kill(proc.pid, signal.SIGHUP)  # what ExecReload= sends
        wait_for(lambda: "tunnel_ports=flow" in log.read_text(), 20, message="the reload logged")
        assert api.get("/v1/tenants/blue")["vni"] == 5001
    finally:
        for peer in (switch, host):
            if peer is not None:
                peer.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = log.read_text()
    assert "Traceback" not in text and "Operation not permitted" not in text, text[-3000:]

"""The wheel is all an operator needs: built from the repo, installed into a fresh venv (no source
tree on the path), `overlay-controller` serves a healthy API and metrics, `overlayctl` talks to it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from lab.netlab import free_tcp_ports, wait_for

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def source_files(repo: Path) -> list[str]:
    """What the wheel is built from: the files git tracks, plus new ones it does not ignore.

    Never a walk of the directory: a local venv, a build directory or a link to another checkout
    (.venv-int once pointed at one developer's machine) must not break the build elsewhere.
    Links are left out: the package ships none, and a dangling one cannot be copied.
    """
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(name for name in set(out.split("\0")) if name and (repo / name).is_file()
                  and not (repo / name).is_symlink())


def copy_source(repo: Path, dst: Path) -> None:
    for name in source_files(repo):
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dst / name)


def _run(*cmd: str | Path, cwd: Path, timeout: float = 240, quiet: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    if quiet:  # a build warning today is a broken build on a later setuptools (the license table did)
        assert "Warning" not in done.stderr, f"{cmd} warned:\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(wheel, venv bin directory)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy: a build in place would leave build/ in the worktree
    copy_source(REPO, src)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", src, cwd=tmp, quiet=True)
    (wheel,) = (tmp / "dist").glob("*.whl")
    _run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    _run(tmp / "venv/bin/pip", "install", "-q", "--disable-pip-version-check", wheel, cwd=tmp)
    return wheel, tmp / "venv/bin"


def test_the_wheel_ships_the_controller_and_not_the_harness(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"controller", "apps", f"sdn_overlay-{VERSION}.dist-info"}
    assert "apps/overlay.py" in names and "controller/shell/main.py" in names
    entry_points = zipfile.ZipFile(wheel).read(f"sdn_overlay-{VERSION}.dist-info/entry_points.txt").decode()
    assert "overlay-controller = controller.shell.main:main" in entry_points
    assert "overlayctl = controller.cli.main:main" in entry_points


def test_both_commands_say_the_version(installed, tmp_path):
    _, bin_dir = installed
    assert _run(bin_dir / "overlay-controller", "--version", cwd=tmp_path).strip() == f"overlay-controller {VERSION}"
    assert _run(bin_dir / "overlayctl", "--version", cwd=tmp_path).strip() == f"overlayctl {VERSION}"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_console_script_serves_a_healthy_api_metrics_and_the_web_view(installed, tmp_path):
    _, bin_dir = installed
    of_port, ovsdb_port, rest_port, metrics_port = free_tcp_ports(4, "127.0.0.1")
    conf = tmp_path / "overlay.conf"
    conf.write_text(f"[DEFAULT]\nwsapi_host = 127.0.0.1\nwsapi_port = {rest_port}\n"
                    f"[ovsdb]\naddress = 127.0.0.1\nport = {ovsdb_port}\n"
                    f"[overlay]\nstate_dir = {tmp_path}\nmetrics_host = 127.0.0.1\nmetrics_port = {metrics_port}\n")
    log = tmp_path / "controller.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(bin_dir / "overlay-controller"), "--config-file", str(conf),
                                 "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(of_port)],
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    try:
        def healthy() -> dict | None:
            assert proc.poll() is None, f"overlay-controller exited:\n{log.read_text()[-3000:]}"
            try:
                status, body = _get(f"http://127.0.0.1:{rest_port}/v1/health")
            except OSError:
                return None
            return json.loads(body) if status == 200 else None

        health = wait_for(healthy, 60, interval=0.2, message="a healthy /v1/health")
        assert health["ready"] is True and health["version"] == VERSION
        status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert f'overlay_build_info{{version="{VERSION}"}} 1.0' in text.decode()
        assert _get(f"http://127.0.0.1:{metrics_port}/v1/tenants")[0] == 404  # only metrics there
        out = _run(bin_dir / "overlayctl", "--url", f"http://127.0.0.1:{rest_port}", "health", cwd=tmp_path)
        assert out.strip() == "ready"
        # the web view comes from the wheel's package data: the page and what it loads
        status, page = _get(f"http://127.0.0.1:{rest_port}/")
        assert status == 200 and b"/ui/app.js" in page and b"/ui/app.css" in page
        for asset in ("/ui/app.js", "/ui/app.css"):
            status, body = _get(f"http://127.0.0.1:{rest_port}{asset}")
            assert status == 200 and len(body) > 500, asset
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

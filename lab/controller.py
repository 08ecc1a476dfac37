"""Run the real controller (osken-manager apps/overlay.py) as a process, and talk to its REST API
(with overlayctl's client, controller/cli/client.py: ctl.api.get/post/put/delete/request, ApiError)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from controller.cli.client import ApiError, Client
from lab.netlab import free_tcp_ports, wait_for

REPO = Path(__file__).resolve().parent.parent
OSKEN_MANAGER = Path(sys.executable).parent / "osken-manager"


def _listening(ip: str, port: int) -> bool:
    """Is anything accepting connections there? (A bind test would also trip on TIME_WAIT.)"""
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


class Controller:
    """The app under test, with its own config file, ports, database and log."""

    def __init__(self, listen_ip: str, *, tunnel_type: str = "vxlan", mac_learning: str = "controller",
                 tunnel_ports: str = "mesh", workdir: str | None = None,
                 extra: dict[str, dict[str, Any]] | None = None, netns: str | None = None) -> None:
        self.listen_ip = listen_ip
        # In its own namespace (one of several, lab/ha.py) it has the usual ports to itself and
        # serves the API on its own address; otherwise free ports, API on loopback.
        self.netns = netns
        self.of_port, self.ovsdb_port, self.rest_port = (6653, 6640, 8080) if netns else free_tcp_ports(3)
        rest_host = listen_ip if netns else "127.0.0.1"
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="overlay-ctl-"))
        self.log_path = self.workdir / "controller.log"
        self.conf_path = self.workdir / "overlay.conf"
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"wsapi_host": rest_host, "wsapi_port": self.rest_port},
            "ovsdb": {"address": listen_ip, "port": self.ovsdb_port},
            "overlay": {"tunnel_type": tunnel_type, "mac_learning": mac_learning, "tunnel_ports": tunnel_ports,
                        "db": self.workdir / "overlay.db"},
        }
        for name, values in (extra or {}).items():
            sections.setdefault(name, {}).update(values)
        self.sections = sections
        self._write_conf()
        self.api = Client(f"http://{rest_host}:{self.rest_port}")  # overlayctl's client
        self.proc: subprocess.Popen | None = None

    def _write_conf(self) -> None:
        self.conf_path.write_text("".join(
            f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
            for name, values in self.sections.items()))

    def reload(self, **overlay: Any) -> None:
        """Change [overlay] options in the config file and tell the running app (SIGHUP)."""
        self.sections["overlay"].update(overlay)
        self._write_conf()
        assert self.proc is not None and self.proc.poll() is None, "controller not running"
        os.kill(self.proc.pid, signal.SIGHUP)

    def start(self, timeout: float = 20.0) -> Controller:
        # os-ken listens with SO_REUSEPORT: a leftover process would silently share our switches.
        for ip, port in ((self.listen_ip, self.of_port), (self.listen_ip, self.ovsdb_port),
                         (urlsplit(self.api.base).hostname, self.rest_port)):
            if _listening(ip, port):
                raise RuntimeError(f"something already listens on {ip}:{port}")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*(["ip", "netns", "exec", self.netns] if self.netns else []),
             str(OSKEN_MANAGER), "apps/overlay.py", "--config-file", str(self.conf_path),
             "--ofp-listen-host", self.listen_ip, "--ofp-tcp-listen-port", str(self.of_port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        log.close()
        wait_for(self._ready, timeout, message=f"controller ready (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"controller exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return bool(self.api.get("/v1/health")["ready"])
        except (OSError, ApiError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def admit(self, *hosts: str) -> None:
        """Admit hosts by name, as an operator does (PUT /v1/hosts/{id}/admission; overlayctl hosts admit):
        the controller's default admission (approve) gives a host nothing until then."""
        for host in hosts:
            self.api.put(f"/v1/hosts/{host}/admission", {"admitted": True})

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Run the real controller (osken-manager apps/overlay.py) as a process, and talk to its REST API
(with overlayctl's client, controller/cli/client.py: ctl.api.get/post/put/delete/request, ApiError).

Its state directory is its work directory: the database, the lock and the API token the controller
makes at its first start (the client reads it once the controller is up). With `tls=lab.pki` its
OpenFlow and OVSDB listeners take TLS only, with the lab's ovs-pki certificates (lab/pki.py), and
Overlay (lab/overlay.py) joins its hosts over ssl:."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from controller.cli.client import ApiError, Client
from controller.model import install
from lab.netlab import free_tcp_ports, wait_for
from lab.pki import HostTls, Pki

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
                 extra: dict[str, dict[str, Any]] | None = None, netns: str | None = None,
                 tls: Pki | None = None) -> None:
        self.listen_ip = listen_ip
        self.pki = tls
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
                        "state_dir": self.workdir, "db": self.workdir / "overlay.db"},
        }
        if tls is not None:
            key, cert = tls.controller()
            sections["tls"] = {"private_key": key, "certificate": cert, "ca_certificate": tls.switch_ca}
        for name, values in (extra or {}).items():
            sections.setdefault(name, {}).update(values)
        self.sections = sections
        self._write_conf()
        # overlayctl's client; over HTTPS ([tls] https) it checks the controller's CA, as overlayctl --ca-file does
        https = str(sections.get("tls", {}).get("https", "false")).lower() == "true"
        self.api = Client(f"{'https' if https else 'http'}://{rest_host}:{self.rest_port}",
                          ca_file=str(tls.controller_ca) if https and tls is not None else None)
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

    def host_tls(self, name: str) -> HostTls | None:
        """What host `name` joins this controller with: its certificate, or None (tcp:)."""
        return None if self.pki is None else self.pki.host_tls(name)

    @property
    def token_path(self) -> Path | None:
        """The API token file the controller reads (and makes at the first start); None: no token."""
        o = self.sections["overlay"]
        if str(o.get("api_token", "true")).lower() == "false":
            return None
        return Path(o.get("api_token_file") or install.token_path(str(self.workdir)))

    def start(self, timeout: float = 20.0) -> Controller:
        # A leftover process on our ports: say so here (the controller itself would refuse to start).
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
        path = self.token_path
        self.api.token = path.read_text().strip() if path is not None else None
        return self

    def metrics_text(self) -> str:
        """GET /metrics as Prometheus scrapes it, with the API's token (and CA, over HTTPS)."""
        auth = {"Authorization": f"Bearer {self.api.token}"} if self.api.token else {}
        req = urllib.request.Request(self.api.base + "/metrics", headers=auth)
        with urllib.request.urlopen(req, timeout=10, context=self.api.context) as resp:
            return resp.read().decode()

    def cli_env(self) -> dict[str, str]:
        """What overlayctl needs to reach this controller as an operator does: $OVERLAY_URL and the
        token file ($OVERLAY_TOKEN holds its value: overlayctl reads no file by default here)."""
        env = {"OVERLAY_URL": self.api.base}
        if self.api.token:
            env["OVERLAY_TOKEN"] = self.api.token
        if self.api.context is not None and self.pki is not None:
            env["OVERLAY_CA_FILE"] = str(self.pki.controller_ca)
        return env

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

    def log_mark(self) -> int:
        """Where the log ends now: wait_logged(text, since=mark) looks only at what comes after."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def wait_logged(self, text: str, since: int = 0, timeout: float = 20.0) -> None:
        """Until the log holds text after byte offset since."""
        def logged() -> bool:
            with open(self.log_path, "rb") as fh:
                fh.seek(since)
                return text.encode() in fh.read()
        wait_for(logged, timeout, 0.05, f"{text!r} in the controller's log {self.log_path}")

    def wait_recovery_over(self, since: int, timeout: float = 20.0) -> None:
        """Until the recovery window begun after log offset since (a start, a takeover) has ended:
        the pass that deletes what no endpoint claimed has been computed."""
        from controller.core.core import RECOVERY_OVER  # here: lab.overlay stays importable by /usr/bin/python3
        self.wait_logged(RECOVERY_OVER, since, timeout)

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

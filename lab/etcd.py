"""A real etcd cluster for tests and benchmarks: N members of Debian's etcd-server (/usr/bin/etcd)
on free ports of one address (loopback by default), each with its own temporary data directory.

    with EtcdCluster(3) as etcd:          # healthy when it returns
        ctl_conf = {"etcd": {"endpoints": ",".join(etcd.endpoints)}}
        etcd.kill(0)                      # SIGKILL member 0: the other two keep a quorum
        etcd.start(0)                     # it rejoins with its data directory

Every member is a child process in its own session; the context manager (or close()) kills them
all and removes the directories, also when the body failed. Nothing needs root or the lab lock.

With `tls=pki` (lab/pki.py) the client URLs are https: each member shows a certificate for its
address signed by the PKI's controllerca, and takes only clients whose certificate that CA signed
(--client-cert-auth), as the controller's is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab.pki import Pki
from lab.procs import free_tcp_ports, wait_for

ETCD = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
# Raft timing for a loaded 2-core machine: a heartbeat every 100 ms, a new leader after 1 s of
# silence (etcd's defaults are 100/1000 too; spelled out because failover tests depend on them).
HEARTBEAT_MS = 100
ELECTION_MS = 1000


class EtcdCluster:
    """`size` members (1 or more) named m0, m1, ...; `.endpoints` are their client URLs."""

    def __init__(self, size: int = 3, host: str = "127.0.0.1", workdir: str | None = None,
                 heartbeat_ms: int = HEARTBEAT_MS, election_ms: int = ELECTION_MS, tls: Pki | None = None) -> None:
        if size < 1:
            raise ValueError("an etcd cluster has at least one member")
        self.size, self.host = size, host
        self.heartbeat_ms, self.election_ms = heartbeat_ms, election_ms
        ports = free_tcp_ports(2 * size, host)
        self.client_ports, self.peer_ports = ports[:size], ports[size:]
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="overlay-etcd-"))
        self.token = f"overlay-{os.getpid()}-{self.client_ports[0]}"
        self.procs: list[subprocess.Popen | None] = [None] * size
        self.pki = tls
        self.probe_context: ssl.SSLContext | None = None  # /health over https, as a client the CA signed
        if tls is not None:
            key, cert = tls.controller()
            self.probe_context = ssl.create_default_context(cafile=str(tls.controller_ca))
            self.probe_context.load_cert_chain(cert, key)

    @property
    def endpoints(self) -> list[str]:
        scheme = "http" if self.pki is None else "https"
        return [f"{scheme}://{self.host}:{p}" for p in self.client_ports]

    def _tls_flags(self) -> list[str]:
        if self.pki is None:
            return []
        key, cert = self.pki.server("etcd", self.host)
        return ["--cert-file", str(cert), "--key-file", str(key), "--client-cert-auth",
                "--trusted-ca-file", str(self.pki.controller_ca)]

    def data_dir(self, i: int) -> Path:
        return self.workdir / f"m{i}.etcd"

    def log_path(self, i: int) -> Path:
        return self.workdir / f"m{i}.log"

    def _spawn(self, i: int) -> None:
        peers = ",".join(f"m{j}=http://{self.host}:{p}" for j, p in enumerate(self.peer_ports))
        client, peer = self.endpoints[i], f"http://{self.host}:{self.peer_ports[i]}"
        log = open(self.log_path(i), "ab")
        # The --initial-* flags only matter for the first start; a restart reads the data directory.
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", f"m{i}", "--data-dir", str(self.data_dir(i)),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", peers, "--initial-cluster-state", "new",
             "--initial-cluster-token", self.token,
             "--heartbeat-interval", str(self.heartbeat_ms), "--election-timeout", str(self.election_ms),
             "--logger", "zap", "--log-level", "warn", *self._tls_flags()],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def running(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    def healthy(self, i: int) -> bool:
        """Member i answers /health with true: it is up and its cluster has a leader and a quorum."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"etcd member m{i} exited with {proc.returncode}:\n{self.log_tail(i)}")
        try:
            with urllib.request.urlopen(self.endpoints[i] + "/health", timeout=1.0,
                                        context=self.probe_context) as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every running member reports healthy (polled until the deadline)."""
        members = [i for i in range(self.size) if self.running(i)]
        wait_for(lambda: all(self.healthy(i) for i in members), timeout, interval=0.1,
                 message=f"etcd members {members} healthy (logs in {self.workdir})")

    def start_all(self, timeout: float = 30.0) -> EtcdCluster:
        for i in range(self.size):
            if not self.running(i):
                self._spawn(i)
        self.wait_healthy(timeout)
        return self

    def start(self, i: int, timeout: float = 30.0) -> None:
        """(Re)start member i with its data directory; returns once it is healthy."""
        if not self.running(i):
            self._spawn(i)
        wait_for(lambda: self.healthy(i), timeout, interval=0.1, message=f"etcd member m{i} healthy")

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Kill member i (SIGKILL: no goodbye to its peers) and reap it."""
        proc = self.procs[i]
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.procs[i] = None

    def stop_all(self) -> None:
        for i in range(self.size):
            self.kill(i)

    def log_tail(self, i: int, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(i).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        self.stop_all()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        try:
            return self.start_all()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # a quick look: python -m lab.etcd [size]
    import sys

    started = time.monotonic()
    with EtcdCluster(int(sys.argv[1]) if len(sys.argv) > 1 else 3) as cluster:
        print(f"healthy in {time.monotonic() - started:.2f} s: {' '.join(cluster.endpoints)}")

"""Traffic for scenarios that must prove "nothing was lost": streams, floods, latency samplers.

Each runs in the background for a bounded time inside lab namespaces (or against the
controller's REST API on loopback) and reports what it measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.netlab import Vm, free_tcp_ports, wait_for


@dataclass
class StreamResult:
    sent: int
    lost: int
    seconds: float

    @property
    def pps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class UdpStream:
    """iperf3 -u between two VMs: sequence-numbered datagrams, the receiver counts what is lost."""

    def __init__(self, src: Vm, dst: Vm, pps: int = 10_000, seconds: float = 10.0, size: int = 64) -> None:
        self.src, self.dst, self.pps, self.seconds, self.size = src, dst, pps, seconds, size
        self.port = free_tcp_ports(1)[0]
        self.server: subprocess.Popen | None = None
        self.client: subprocess.Popen | None = None

    def start(self) -> UdpStream:
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.dst.ns, "iperf3", "-s", "-1", "-J", "-p", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: f":{self.port} " in subprocess.run(
            ["ip", "netns", "exec", self.dst.ns, "ss", "-ltn"], capture_output=True, text=True).stdout,
            5, 0.02, "iperf3 server listening")
        self.client = subprocess.Popen(
            ["ip", "netns", "exec", self.src.ns, "iperf3", "-c", self.dst.ip, "-p", str(self.port), "-u",
             "-b", str(self.pps * self.size * 8), "-l", str(self.size), "-t", f"{self.seconds:g}", "-J"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self

    def result(self) -> StreamResult:
        assert self.client is not None and self.server is not None
        out, _ = self.client.communicate(timeout=self.seconds + 30)
        server_out, _ = self.server.communicate(timeout=10)
        doc = json.loads(server_out)  # the receiver's count is the one that matters
        total = doc["end"]["sum"]
        return StreamResult(int(total["packets"]), int(total["lost_packets"]), float(total["seconds"]))

    def stop(self) -> None:
        for p in (self.client, self.server):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(5)


# Runs inside a VM's namespace: frames with random source MACs at a rate, for a while.
_MAC_FLOOD = """
import os, socket, sys, time
iface, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
end, sent, t0 = time.monotonic() + seconds, 0, time.monotonic()
while time.monotonic() < end:
    src = bytes([0x02]) + os.urandom(5)
    s.send(b"\\xff" * 6 + src + b"\\x08\\x00" + bytes(46))
    sent += 1
    ahead = sent / rate - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead)
print(sent)
"""


class MacFlood:
    """One VM sending broadcast frames from random source MACs: what a MAC-flooding attack does."""

    def __init__(self, vm: Vm, rate: int = 1000, seconds: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", vm.ns, sys.executable, "-c", _MAC_FLOOD, "eth0", str(rate), f"{seconds:g}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.seconds = seconds

    def wait(self) -> int:
        out, _ = self.proc.communicate(timeout=self.seconds + 30)
        return int(out.strip().splitlines()[-1])


class LatencySampler:
    """GET a URL every `interval` s in a thread: (when, seconds, answered 200?) per request."""

    def __init__(self, url: str, interval: float = 0.05, timeout: float = 10.0) -> None:
        self.url, self.interval, self.timeout = url, interval, timeout
        self.samples: list[tuple[float, float, bool]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> LatencySampler:
        self.thread.start()
        return self

    def stop(self) -> LatencySampler:
        self.stopping.set()
        self.thread.join(self.timeout + 1)
        return self

    def _loop(self) -> None:
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as resp:
                    resp.read()
                    ok = resp.status == 200
            except OSError:  # urllib's URLError and HTTPError included
                ok = False
            self.samples.append((t0, time.monotonic() - t0, ok))
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    @property
    def failed(self) -> int:
        return sum(not ok for _, _, ok in self.samples)

    def p(self, q: float) -> float:
        s = sorted(d for _, d, _ in self.samples)
        return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class ReferenceServer:
    """A trivial HTTP server in its own process on loopback (Python's http.server): sampled at the
    same time as the controller, its latency is what the machine's load alone costs a request."""

    def __init__(self) -> None:
        self.port = free_tcp_ports(1, "127.0.0.1")[0]
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                                      "--directory", str(Path(__file__).parent)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/README.md"
        wait_for(self._answers, 10, 0.05, "the reference HTTP server answering")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(5)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return kb / 1024

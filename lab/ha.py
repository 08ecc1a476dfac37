"""Three controller instances and a 3-member etcd on the lab (docs/operator/ha.md).

Each instance runs in its own namespace c1..c3 on the management network with the usual ports
(6653, 6640, REST 8080 on its own address); etcd listens on the management bridge's address in
the root namespace, where every instance reaches it. Hosts join with all three
(`set-controller br1 tcp:c1:6653 tcp:c2:6653 tcp:c3:6653`, the same for the managers).

    with HaLab(Lab()) as ha:
        ov = ha.overlay(hosts=3)
        ha.leader()                  # the instance that leads, once one does on every switch
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import time
from typing import Any

from controller.ha import etcd
from lab.controller import Controller
from lab.etcd import EtcdCluster
from lab.netlab import Lab, wait_for
from lab.overlay import Overlay, create_tenants
from lab.ovshost import OvsHost

# Raft timing for sub-second leases: etcd's minimum lease TTL is 1.5 x its election timeout,
# so 500 ms lets the leader lease be 1 s (etcd's defaults, 100/1000 ms, make it 2 s).
HEARTBEAT_MS, ELECTION_MS = 50, 500


class HaLab:
    def __init__(self, lab: Lab, instances: int = 3, lease_ttl: int = 1, tunnel_type: str = "vxlan",
                 extra: dict[str, dict[str, Any]] | None = None) -> None:
        self.lab = lab
        self.etcd = EtcdCluster(3, host=lab.controller_ip, heartbeat_ms=HEARTBEAT_MS, election_ms=ELECTION_MS)
        self.ctls: list[Controller] = []
        self.lease_ttl, self.tunnel_type = lease_ttl, tunnel_type
        self.extra = extra or {}
        self.instances = instances

    def start(self) -> HaLab:
        try:
            self.etcd.start_all()
            for k in range(1, self.instances + 1):
                ns, ip = self.lab.add_controller_ns(k)
                extra = {**self.extra, "etcd": {"endpoints": ",".join(self.etcd.endpoints),
                                                "instance_name": f"c{k}", "lease_ttl": self.lease_ttl}}
                extra["overlay"] = {**extra.get("overlay", {}), "store": "etcd"}
                self.ctls.append(Controller(ip, tunnel_type=self.tunnel_type, netns=ns, extra=extra))
            for ctl in self.ctls:
                ctl.start()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def ips(self) -> list[str]:
        return [c.listen_ip for c in self.ctls]

    def name(self, ctl: Controller) -> str:
        return f"c{self.ctls.index(ctl) + 1}"

    def role(self, ctl: Controller) -> dict:
        return ctl.api.get("/v1/role")

    def alive(self) -> list[Controller]:
        return [c for c in self.ctls if c.proc is not None and c.proc.poll() is None]

    def leader(self, timeout: float = 10.0, among: list[Controller] | None = None) -> Controller:
        """The instance that leads and whose MASTER role every lab host's switch accepted (a switch
        it does not list yet has not accepted it)."""
        want = {h.datapath_id for h in self.lab.hosts.values() if h.alive}

        def find() -> Controller | None:
            for ctl in among or self.alive():
                try:
                    doc = self.role(ctl)
                except OSError:
                    continue
                master = {dpid for dpid, s in doc["switches"].items() if s["accepted"] == "master"}
                if doc["role"] == "leader" and want <= master:
                    return ctl
            return None
        return wait_for(find, timeout, 0.02, f"a leader that is MASTER on every switch {sorted(want)}")

    def lease_expiry(self) -> float:
        """The floor any lease-based failover stands on, measured now on this etcd: seconds from
        the last renewal of a lease (this lab's TTL) holding one key until etcd has removed the key."""
        client = etcd.connect(self.etcd.endpoints, timeout=1.0)
        try:
            key = f"/lab/expiry/{time.monotonic_ns()}"
            lease = client.lease_grant(self.lease_ttl)
            client.txn([], [etcd.put(key, b"x", lease)])
            renewed = time.monotonic()
            client.lease_keepalive(lease)
            wait_for(lambda: client.get(key) is None, self.lease_ttl + 5, 0.01, "the key of an abandoned lease removed")
            return time.monotonic() - renewed
        finally:
            client.close()

    def overlay(self, hosts: int = 3, tenants: bool = True) -> Overlay:
        """Hosts joined to all three instances; tenants created; meshed by the leader."""
        ov = Overlay(self.lab, self.ctls[0], controller_ips=tuple(self.ips))
        if tenants:  # one write, on any instance: they share etcd
            create_tenants(self.ctls[0])
        for _ in range(hosts):
            ov.add_host()
        ov.wait_meshed(settle=True)
        self.leader()
        return ov

    def signal(self, ctl: Controller, sig: int) -> float:
        """Send a signal to an instance (SIGKILL reaps it); returns when it was sent (monotonic)."""
        assert ctl.proc is not None
        sent = time.monotonic()
        os.kill(ctl.proc.pid, sig)
        if sig == signal.SIGKILL:
            ctl.proc.wait(10)
            ctl.proc = None
        return sent

    def close(self) -> None:
        for ctl in self.ctls:
            if ctl.proc is not None and ctl.proc.poll() is None:
                os.kill(ctl.proc.pid, signal.SIGCONT)  # a stopped process ignores SIGTERM
            ctl.stop()
            shutil.rmtree(ctl.workdir, ignore_errors=True)
        self.etcd.close()

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- c{k} ({c.log_path})\n{c.log_tail(lines)}" for k, c in enumerate(self.ctls, 1))

    def __enter__(self) -> HaLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def role_request_by_hand(host: OvsHost, role: str, generation: int, timeout: float = 5.0) -> str:
    """Ask br1 for a role over its management socket, as a controller would: the role it
    accepted ('master', 'slave'), or 'stale' when it refused the generation as older than one
    it has seen. Only for generations expected to be refused: an accepted MASTER request here
    would demote the real master."""
    from os_ken.ofproto import ofproto_v1_3 as ofp

    from controller.southbound import ofmsg

    req = ofmsg.role_request(role, generation)
    req.xid = 7
    req.serialize()
    msg, = host.openflow(bytes(req.buf), timeout)
    kind = msg[1]
    if kind == ofp.OFPT_ERROR:
        err_type, code = struct.unpack("!HH", msg[8:12])
        if (err_type, code) == (ofp.OFPET_ROLE_REQUEST_FAILED, ofp.OFPRRFC_STALE):
            return "stale"
        raise ValueError(f"br1 answered error type {err_type} code {code}")
    if kind == ofp.OFPT_ROLE_REPLY:
        return ofmsg.ROLE_NAMES.get(struct.unpack("!I", msg[8:12])[0], "?")
    raise ValueError(f"br1 answered message type {kind} to a role request")

#!/usr/bin/python3
"""Mininet topologies for the overlay controller: the article's lab and a parameterised one.

    # the controller first (it listens on all addresses by default), then:
    mn --custom mininet_topos/overlay.py --topo article \\
       --controller remote,ip=10.97.0.1,port=6653 --test pingall
    mn --custom mininet_topos/overlay.py --topo overlay,hosts=4,vms=3,tenants=3 \\
       --controller remote,ip=10.97.0.1,port=6653
    /usr/bin/python3 mininet_topos/overlay.py --help          # the same as a script

Every physical host is a node with its own ovsdb-server + ovs-vswitchd that joins the
controller as a real host does (see nodes.py); the topology creates its tenants over the
controller's REST API (topo argument api=URL, or api=none), with the token in token=FILE (default:
the file the controller makes, /var/lib/sdn-overlay/api.token, when readable), and admits its own hosts
there by name (the controller's default admission, approve, gives a host nobody admitted nothing).
Topology arguments (mn style):
tunnels=<kind> (vxlan, gre, ...: make the article's tunnel ports by hand; default: the controller makes
them), datapath=user|kernel, ovsdb=PORT (the controller's OVSDB manager port, 6640),
mgmt=NET (only if the controller ip is an address the machine already has), sameips=1.

Runs under /usr/bin/python3 only (Debian's python3-mininet).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

# mn exec()s this file without __file__: find our directory from the code object instead
_HERE = os.path.dirname(os.path.abspath(inspect.currentframe().f_code.co_filename))  # type: ignore[union-attr]
for _path in (_HERE, os.path.dirname(_HERE)):  # nodes.py, and the repo's stdlib-only lab package
    if _path not in sys.path:
        sys.path.insert(0, _path)

import mininet.clean  # noqa: E402
from mininet.log import info  # noqa: E402
from mininet.topo import Topo  # noqa: E402
from nodes import OverlayHost, RootBridge, Run, Vm, cleanup_current  # noqa: E402

from controller.model import install  # noqa: E402
from controller.pipeline import tunnel_kinds as kinds  # noqa: E402
from lab.netlab import group_buckets  # noqa: E402

COLOURS = ("blue", "red", "green", "gold", "pink", "cyan", "grey", "lime")


def tenant_names(count: int) -> list[str]:
    return [COLOURS[k] if k < len(COLOURS) else f"t{k + 1}" for k in range(count)]


# --------------------------------------------------------------------------
# mn calls mininet.clean.cleanup() (= `mn -c`) on any error or Ctrl-C during start-up: it
# deletes every bridge of the system OVS and kills processes by name, machine-wide. When mn
# loads this file, that call removes only what this topology created instead.


def _disarm_mn_cleanup() -> None:
    main = sys.modules.get("__main__")
    if main is not None and hasattr(main, "MininetRunner") and \
            getattr(main, "cleanup", None) is mininet.clean.cleanup:
        main.cleanup = _own_cleanup


def _own_cleanup() -> None:
    info("*** overlay topology: removing only what it created (not `mn -c`)\n")
    cleanup_current()


_disarm_mn_cleanup()


# --------------------------------------------------------------------------
# tenants over REST


def read_token(path: str | None) -> str | None:
    """The API token in `path`; without one, the controller's own file if readable (else None)."""
    try:
        with open(path or install.token_path(), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        if path:
            raise RuntimeError(f"cannot read the API token file {path}") from None
        return None


def ensure_tenants(api: str, tenants: list[dict[str, Any]], token: str | None = None) -> None:
    """Create each tenant unless an identical one exists; anything else is an error."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    for t in tenants:
        body = json.dumps(t).encode()
        req = urllib.request.Request(f"{api}/v1/tenants", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **auth})
        try:
            urllib.request.urlopen(req, timeout=10).read()
            info(f"*** tenant {t['name']} created (vni {t['vni']}, vlan {t['vlan']})\n")
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise RuntimeError(f"POST {api}/v1/tenants: HTTP 401: give the API token (token=FILE, "
                                   "--token-file)") from None
            if e.code != 409:
                raise RuntimeError(f"POST {api}/v1/tenants {t}: HTTP {e.code} {e.read()!r}") from None
            get = urllib.request.Request(f"{api}/v1/tenants/{t['name']}", headers=auth)
            with urllib.request.urlopen(get, timeout=10) as r:
                have = json.loads(r.read())
            if (have.get("vni"), have.get("vlan")) != (t["vni"], t["vlan"]):
                raise RuntimeError(f"tenant clash at {api}: want {t}, the controller has {have}") from None
        except urllib.error.URLError as e:
            raise RuntimeError(f"controller REST API {api} unreachable ({e.reason}); "
                               "start the controller first, or pass api=none") from None


def admit_hosts(api: str, hosts: list[str], token: str | None = None) -> None:
    """Admit the topology's hosts by name, as an operator does (overlayctl hosts admit)."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    for host in hosts:
        req = urllib.request.Request(f"{api}/v1/hosts/{host}/admission", data=b'{"admitted": true}', method="PUT",
                                     headers={"Content-Type": "application/json", **auth})
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"PUT {api}/v1/hosts/{host}/admission: HTTP {e.code} {e.read()!r}") from None
    info(f"*** hosts {', '.join(hosts)} admitted (the topology admits its own hosts)\n")


# --------------------------------------------------------------------------
# topologies


class OverlayTopo(Topo):
    """Hosts on an underlay bridge and a management bridge, VMs placed by ``placement``.

    placement[i] = tenant index of each VM on host i+1.
    """

    def build_overlay(self, placement: list[list[int]], tenants: int, *, tunnels: str | None = None,
                      datapath: str = "user", ovsdb: int = 6640, api: str = "http://127.0.0.1:8080",
                      mgmt: str = "10.97.0.0/24", sameips: int = 0, token: str | None = None) -> None:
        tunnels = None if tunnels in (None, "", "none", "controller") else tunnels
        run = Run.claim()
        self.run_id = run.id
        names = tenant_names(tenants)
        self.tenants = [{"name": n, "vni": k + 1, "vlan": k + 1} for k, n in enumerate(names)]
        ul = self.addSwitch(f"ul{run.id}", cls=RootBridge, run=run.id, role="underlay")
        mg = self.addSwitch(f"mg{run.id}", cls=RootBridge, run=run.id, role="mgmt", mgmt_net=mgmt)
        per_tenant = [0] * tenants
        for i, vm_tenants in enumerate(placement, start=1):
            h = self.addSwitch(f"h{i}", cls=OverlayHost, run=run.id, index=i, ovsdb_port=int(ovsdb),
                               datapath=datapath, tunnels=tunnels)
            self.addLink(h, ul)
            self.addLink(h, mg)
            on_host = [0] * tenants
            for k in vm_tenants:
                per_tenant[k] += 1
                on_host[k] += 1
                n = per_tenant[k]
                if n > 254:
                    raise ValueError(f"tenant {names[k]}: more than 254 VMs")
                suffix = "" if on_host[k] == 1 else chr(ord("a") + on_host[k] - 1)
                vm = self.addHost(f"{names[k]}{i}{suffix}", cls=Vm, run=run.id, tenant=names[k], vlan=k + 1,
                                  ip=f"10.0.{0 if sameips else k + 1}.{n}/16",
                                  mac=f"02:00:00:{k + 1:02x}:{i:02x}:{on_host[k]:02x}")
                self.addLink(vm, h)
        if api and api != "none":
            ensure_tenants(str(api).rstrip("/"), self.tenants, read_token(token))
            admit_hosts(str(api).rstrip("/"), [f"h{i}" for i in range(1, len(placement) + 1)], read_token(token))


class ArticleTopo(OverlayTopo):
    """The article's lab: 3 hosts (br0 + br1 each), 2 VMs per host in 2 tenants (VLAN/VNI 1 and 2)."""

    def build(self, tunnels: str | None = None, **opts: Any) -> None:
        self.build_overlay([[0, 1]] * 3, 2, tunnels=tunnels, **opts)


def spread(hosts: int, vms: int, tenants: int) -> list[list[int]]:
    """Tenant k lives on the first max(2, hosts-k) hosts; each host's VMs rotate over its tenants.

    Uneven on purpose: floods of the later tenants need not reach every host.
    """
    placement = []
    for i in range(1, hosts + 1):
        present = [k for k in range(tenants) if i <= max(2, hosts - k)] or [0]
        placement.append([present[(i - 1 + j) % len(present)] for j in range(vms)])
    return placement


class SpreadTopo(OverlayTopo):
    """hosts x vms per host x tenants, tenants spread unevenly (see spread())."""

    def build(self, hosts: int = 4, vms: int = 3, tenants: int = 3, **opts: Any) -> None:
        if not (1 <= hosts <= 250 and 1 <= vms <= 64 and 1 <= tenants <= 4094):
            raise ValueError("need 1..250 hosts, 1..64 vms per host, 1..4094 tenants")
        self.build_overlay(spread(int(hosts), int(vms), int(tenants)), int(tenants), **opts)


topos = {"article": ArticleTopo, "overlay": SpreadTopo}


# --------------------------------------------------------------------------
# script form


def flood_buckets(host: OverlayHost) -> dict[int, int]:
    """Group id (the tenant's VNI) -> how many hosts its floods reach from ``host``."""
    return group_buckets(host.ofctl("dump-groups", "br1"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="overlay.py", description=__doc__.split("\n\n")[0],
        epilog="Start the controller first (listening on all addresses, the default). Exit status of --check: "
               "0 when every same-tenant pair pings and no frame of a VM reaches another tenant's VM.")
    p.add_argument("topo", choices=sorted(topos), help="article: 3 hosts x 2 VMs x 2 tenants; overlay: parameterised")
    p.add_argument("--hosts", type=int, default=4, help="overlay: physical hosts (4)")
    p.add_argument("--vms", type=int, default=3, help="overlay: VMs per host (3)")
    p.add_argument("--tenants", type=int, default=3, help="overlay: tenants (3)")
    p.add_argument("--controller", default="10.97.0.1:6653", metavar="IP:PORT",
                   help="OpenFlow address the hosts dial (10.97.0.1:6653); a free ip goes on the management bridge")
    p.add_argument("--ovsdb-port", type=int, default=6640, help="the controller's OVSDB manager port (6640)")
    p.add_argument("--api", default="http://127.0.0.1:8080", help="controller REST API, or 'none'")
    p.add_argument("--token-file", help="the API token (default: the controller's own file, if readable)")
    p.add_argument("--tunnels", choices=("controller", *kinds.NAMES), default="controller",
                   help="who makes the tunnel ports: the controller (its tunnel_type) or this script, by hand")
    p.add_argument("--datapath", choices=("user", "kernel"), default="user",
                   help="user: netdev, no OVS kernel module needed; kernel: the system datapath")
    p.add_argument("--mgmt", default="10.97.0.0/24", help="management subnet if the controller ip is already local")
    p.add_argument("--same-ips", action="store_true", help="both tenants use the same VM addresses")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--cli", action="store_true", help="open the Mininet CLI (default)")
    mode.add_argument("--pingall", action="store_true", help="Mininet's pingall, then exit")
    mode.add_argument("--check", action="store_true", help="ping matrix within/across tenants, then exit")
    p.add_argument("--json", action="store_true", help="--check: print the matrix as JSON")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the controller to mesh the hosts")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from check import ping_matrix
    from mininet.cli import CLI
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import RemoteController

    from lab.overlay import render_matrix, verdict

    a = _parse(argv)
    setLogLevel("warning" if a.json else "info")
    ip, _, port = a.controller.rpartition(":")
    opts = dict(tunnels=a.tunnels, datapath=a.datapath, ovsdb=a.ovsdb_port, api=a.api, mgmt=a.mgmt,
                sameips=int(a.same_ips), token=a.token_file)
    topo = ArticleTopo(**opts) if a.topo == "article" else \
        SpreadTopo(hosts=a.hosts, vms=a.vms, tenants=a.tenants, **opts)
    net = Mininet(topo=topo, controller=None, build=False)
    net.addController("c0", controller=RemoteController, ip=ip, port=int(port))
    try:
        net.build()
        net.start()
        if not net.waitConnected(timeout=a.timeout):
            print(f"hosts not meshed by the controller within {a.timeout:g}s:", file=sys.stderr)
            for s in net.switches:
                if isinstance(s, OverlayHost):
                    print(f"  {s.status()}", file=sys.stderr)
            return 1
        if a.pingall:
            return 0 if net.pingAll() is not None else 1
        if a.check:
            matrix = ping_matrix(net.hosts)
            tenants = {v.name: v.tenant for v in net.hosts}
            ok = verdict(tenants, matrix)
            result = {"run": topo.run_id, "matrix": matrix, "ok": ok, "tenants": tenants,
                      "flood_buckets": {s.name: flood_buckets(s) for s in net.switches if isinstance(s, OverlayHost)}}
            print(json.dumps(result) if a.json else render_matrix([v.name for v in net.hosts], tenants, matrix))
            return 0 if ok else 1
        CLI(net)
        return 0
    finally:
        net.stop()
        cleanup_current()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, ValueError) as e:  # NodeError is a RuntimeError; what we made goes at exit
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

"""Tunnel state per host in both tunnel_ports modes, counted by the core (no switch needed).

    .venv/bin/python -m bench.tunnel_ports [--hosts 3 10 30] [--json FILE]   (100 hosts: a few minutes)

Hosts join one by one; every port the core asks for is fed back as made (as OVSDB would
report it). Prints, for the first host: tunnel ports, classify flows, flows (two tenants, no
endpoints), and the OVSDB operations the last join cost on the new host and on the others.
mesh is the baseline, measured in the same run.
"""

from __future__ import annotations

import argparse
import json

from controller.core.core import Core
from controller.model import tables as t
from controller.model.ops import OvsdbOp
from controller.model.state import HostView, Tenant, TunnelPort
from controller.pipeline.tunnel_ports import MODES, TunnelPorts
from controller.shell.config import defaults
from controller.southbound import ovsdb_model as om

TENANTS = [Tenant("blue", 5001, 10), Tenant("red", 5002, 20)]


def _view(i: int, tunnels: tuple[TunnelPort, ...] = ()) -> HostView:
    return HostView(f"h{i}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", i, f"br-{i}", 1, tunnels)


def measure(hosts: int, ports: TunnelPorts) -> dict[str, int]:
    core = Core(defaults(tunnel_ports=ports.name), TENANTS)
    views: dict[int, HostView] = {}
    own = others = 0
    for i in range(1, hosts + 1):
        core.datapath_up(i)
        views[i] = _view(i)
        own = others = 0
        for op in core.host_view(views[i], now=0):
            if not isinstance(op, OvsdbOp):
                continue
            j = int(op.system_id[1:])
            own, others = (own + len(om.transaction(op)), others) if j == i else (own, others + len(om.transaction(op)))
            made = [o["row"] for o in om.transaction(op) if o["op"] == "insert" and o["table"] == "Interface"]
            have = views[j].tunnels
            views[j] = _view(j, have + tuple(
                TunnelPort(r["name"], r["type"], dict(r["options"][1])["remote_ip"], 100 + len(have) + k,
                           True, r["name"])
                for k, r in enumerate(made)))
        for j in range(1, i + 1):
            core.host_view(views[j], now=0)
    flows = [fl for part in core.installed[1].flows.values() for fl in part.values()]
    return {"tunnel ports per host": len(views[1].tunnels),
            "classify flows": sum(fl.table == t.CLASSIFY and fl.goto == t.TUNNEL_IN for fl in flows),
            "flows per host": len(flows),
            "OVSDB ops, joining host": own,
            "OVSDB ops, other hosts": others}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, nargs="+", default=[3, 10, 30])
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    args = ap.parse_args(argv)
    rows = [{"hosts": n, "tunnel_ports": name, **measure(n, mode)} for n in args.hosts for name, mode in MODES.items()]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    doc = {"bench": "tunnel_ports", "baseline": "mesh", "results": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

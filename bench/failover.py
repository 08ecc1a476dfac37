"""Failover time of three controller instances (docs/operator/ha.md, docs/benchmarks/failover.md), on the real lab.

Each trial kill -9s the leader and measures, from the kill, until another instance leads
(its election) and until every switch has accepted it as MASTER (its role reply); then the
killed instance is started again and rejoins as a follower. The baseline, measured in the same
run on the same etcd: how long etcd takes to drop a key whose lease is no longer renewed, from
its last renewal (the floor any lease-based failover stands on).

    .venv/bin/python -m bench.failover --trials 5 --json failover.json     # as root, ~1 min
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time

from bench.report import markdown_table, publish
from lab.ha import HaLab
from lab.netlab import Lab, wait_for


def trial(ha: HaLab) -> dict:
    old = ha.leader(20)
    survivors = [c for c in ha.ctls if c is not old]
    killed_wall = time.time()
    ha.signal(old, signal.SIGKILL)
    new = ha.leader(20, among=survivors)
    doc = ha.role(new)
    result = {"killed": ha.name(old), "leader": ha.name(new), "generation": doc["generation"],
              "elected_s": round(doc["leader_since"] - killed_wall, 3),
              "master_everywhere_s": round(max(s["accepted_at"] for s in doc["switches"].values()) - killed_wall, 3),
              "flow_mods": new.api.get("/v1/counters")["flow_mods"]}
    old.start()  # it comes back as a follower, SLAVE on every switch
    wait_for(lambda: ha.role(old)["role"] == "follower" and all(
        s["accepted"] == "slave" for s in ha.role(old)["switches"].values()) and len(ha.role(old)["switches"]) == 3,
        20, 0.05, "the killed instance back as a follower")
    return result


def table(rows: list[dict], expiry: list[float]) -> str:
    out = [markdown_table(
        ("trial", "killed", "new leader", "generation", "elected s", "MASTER on every switch s", "flow-mods sent"),
        [(i, r["killed"], r["leader"], r["generation"], f"{r['elected_s']:.2f}", f"{r['master_everywhere_s']:.2f}",
          r["flow_mods"]) for i, r in enumerate(rows, 1)], "rllrrrr")]
    m = [r["master_everywhere_s"] for r in rows]
    out.append(f"\nMASTER on every switch: median {statistics.median(m):.2f} s, max {max(m):.2f} s over {len(m)} "
               f"trials; baseline (etcd drops an unrenewed lease's key, from its last renewal): median "
               f"{statistics.median(expiry):.2f} s, max {max(expiry):.2f} s")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--lease-ttl", type=int, default=1)
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)
    lab = Lab()
    ha = HaLab(lab, lease_ttl=args.lease_ttl)
    try:
        ha.start()
        ha.overlay(hosts=args.hosts)
        expiry = [ha.lease_expiry() for _ in range(args.trials)]
        rows = [trial(ha) for _ in range(args.trials)]
    except BaseException:
        print(ha.logs(30), file=sys.stderr)
        raise
    finally:
        ha.close()
        lab.close()
    doc = {"hosts": args.hosts, "lease_ttl": args.lease_ttl, "trials": rows,
           "lease_expiry_s": [round(x, 3) for x in expiry]}
    publish(table(rows, expiry), doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/scale.py's output: the table for people (and docs/benchmarks/scale.md), the plot, the fd limit it needs."""

from __future__ import annotations

import resource

from bench.report import markdown_table
from controller.shell.config import OVERLAY_OPTS

COLUMNS = (
    ("hosts", "hosts"), ("endpoints", "endpoints"), ("flows/host", "flows/host held / needed"),
    ("connect", "connect s"), ("learn", "learn s"), ("cold", "cold start s"), ("bound", "encoder bound s"),
    ("push", "push bound s"),
    ("vm", "1 VM p50/p99 ms"), ("vm_cpu", "1 VM CPU ms p50 / mean, net"), ("join", "1 host p50 ms"),
    ("join_cpu", "1 host CPU ms p50 / mean, net"),
    ("h_conv", "health p50/p99 ms (converging)"), ("h_steady", "health p50/p99 ms (steady)"),
    ("cpu", "CPU s controller / emulator"), ("rss", "RSS MB"), ("mods", "flow-mods"),
)


def raise_fd_limit() -> None:
    """Two sockets per emulated host here, two in the controller (it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _phase(run: dict, name: str, key: str = "converged_s") -> str:
    ph = run["phases"].get(name)
    if ph is None:
        return "-"
    if ph["converged"]:
        return f"{ph[key]:.2f}"
    if name == "connect":
        return f"timeout ({ph['hosts_converged']}/{run['hosts']} hosts)"
    return f"timeout ({ph['endpoints_converged']}/{run['endpoints']} VMs)"


def _pair(d: dict, a: str = "p50", b: str = "p99", digits: int = 0) -> str:
    return f"{d[a]:.{digits}f} / {d[b]:.{digits}f}" if d.get("n") else "-"


def _cpu(phase: dict) -> str:
    """An event's controller CPU net of the routine background measured in the same run
    (older runs without it: the raw figure, in 10 ms ticks)."""
    return _pair(phase.get("net_cpu_ms") or phase.get("cpu_ms", {}), "p50", "mean", digits=1)


def _health(d: dict) -> str:
    failed = f" ({d['failed']}/{d['n']} failed)" if d.get("failed") else ""
    return _pair(d) + failed


def row(run: dict) -> dict[str, str]:
    ph = run["phases"]
    vm, join = ph.get("vm", {}), ph.get("join", {})
    vm_lat, join_lat = vm.get("latency_ms", {}), join.get("latency_ms", {})
    timed_out = lambda p: "" if p.get("converged") else f" ({p.get('events', 0)} done)"  # noqa: E731
    return {
        "hosts": str(run["hosts"]), "endpoints": str(run["endpoints"]),
        "flows/host": f"{run['flows_per_host']['mean']:.0f} / {run.get('flows_needed_per_host', '?')}",
        "connect": _phase(run, "connect"), "learn": _phase(run, "learn"),
        "cold": f"{run['cold_start_s']:.2f}" if "cold_start_s" in run else "-",
        "bound": f"{run['encoder_bound_s']:.2f}",
        "push": f"{run['push_bound_s']:.2f}" if "push_bound_s" in run else "-",
        "vm": _pair(vm_lat) + timed_out(vm),
        "vm_cpu": _cpu(vm) if vm_lat.get("n") else "-",
        "join": (f"{join_lat['p50']:.0f}" if join_lat.get("n") else "-") + timed_out(join),
        "join_cpu": _cpu(join) if join_lat.get("n") else "-",
        "h_conv": _health(run["health"]["convergence"]), "h_steady": _health(run["health"]["steady"]),
        "cpu": f"{run['controller_cpu_s']:.1f} / {run['emulator_cpu_s']:.1f}" if "emulator_cpu_s" in run
        else f"{run['controller_cpu_s']:.1f}", "rss": f"{run['controller_rss_mb'].get('VmHWM', 0):.0f}",
        "mods": str(run["flow_mods_received"]),
    }


def table(doc: dict) -> str:
    """A Markdown table, one row per size."""
    rows = []
    for r in doc["runs"]:
        try:
            rows.append(row(r))
        except KeyError:  # a run whose totals failed: its errors are in the JSON
            rows.append({"hosts": str(r["hosts"]), "endpoints": str(r["endpoints"])}
                        | {key: "error" for key, _ in COLUMNS[2:]})
    body = [[r[key if key in r else title] for key, title in COLUMNS] for r in rows]
    return f"shape: {label(doc)}\n" + markdown_table([title for _, title in COLUMNS], body, "r" * len(COLUMNS))


DEFAULT_PORTS = next(o.default for o in OVERLAY_OPTS if o.name == "tunnel-ports")


def label(doc: dict) -> str:
    """The shape, and the tunnel ports when not the default ([overlay] tunnel_ports' own)."""
    ports = doc.get("args", {}).get("tunnel_ports", DEFAULT_PORTS)
    return doc["shape"] if ports == DEFAULT_PORTS else f"{doc['shape']}, {ports} tunnels"


def merge(docs: list[dict]) -> list[dict]:
    """Runs of several --json files (say, 10 and 100 hosts in one, 1,000 in another), one doc per
    shape and tunnel ports, its runs by host count; a later file's run of a size replaces an earlier."""
    shapes: dict[str, dict] = {}
    for doc in docs:
        into = shapes.setdefault(label(doc), {**doc, "runs": []})
        runs = {r["hosts"]: r for r in into["runs"]} | {r["hosts"]: r for r in doc["runs"]}
        into["runs"] = [runs[n] for n in sorted(runs)]
    return list(shapes.values())


def _get(r: dict, keys: tuple[str, ...]) -> float | None:
    v: object = r
    for k in keys:
        v = v.get(k) if isinstance(v, dict) else None
    return v if isinstance(v, int | float) else None


# (title, [(label, keys into a run)], [(label, target value)])
PANELS = [
    ("cold start (s)", [("cold start", ("cold_start_s",)), ("encoder bound", ("encoder_bound_s",))],
     [("60 s", 60)]),
    ("one more VM (ms)", [("latency p50", ("phases", "vm", "latency_ms", "p50")),
                          ("controller CPU p50, net", ("phases", "vm", "net_cpu_ms", "p50"))], [("5 ms CPU", 5)]),
    ("one more host (ms)", [("latency p50", ("phases", "join", "latency_ms", "p50")),
                            ("controller CPU p50, net", ("phases", "join", "net_cpu_ms", "p50"))], [("250 ms", 250)]),
    ("/v1/health p99 (ms)", [("converging", ("health", "convergence", "p99")),
                             ("steady", ("health", "steady", "p99"))], [("100 ms", 100)]),
    ("learning latency (ms)", [("p50", ("phases", "learn", "latency_ms", "p50")),
                               ("p99", ("phases", "learn", "latency_ms", "p99"))], []),
    ("controller", [("CPU s", ("controller_cpu_s",)), ("peak RSS MB", ("controller_rss_mb", "VmHWM"))],
     [("2 GiB", 2048)]),
    ("flows per host", [("held (mean)", ("flows_per_host", "mean")), ("needed", ("flows_needed_per_host",))], []),
    ("flow-mods received", [("all hosts", ("flow_mods_received",))], []),
]


def plot(docs: list[dict], path: str, note: str = "") -> None:
    """Each figure against hosts, one line style per shape, the issue's targets dotted."""
    try:
        import matplotlib
    except ImportError as e:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"sparse": "-", "dense": "--", "sparse, flow tunnels": ":"}
    markers = {"sparse": "o", "dense": "s", "sparse, flow tunnels": "^"}
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    for ax, (title, series, targets) in zip(axes.flat, PANELS, strict=True):
        for i, (name, keys) in enumerate(series):
            for doc in docs:
                pts = [(r["hosts"], _get(r, keys)) for r in doc["runs"]]
                pts = [(a, b) for a, b in pts if b]  # zeros and missing (timed out) left out
                if pts:
                    ax.plot(*zip(*pts, strict=True), styles.get(label(doc), "-."), marker=markers.get(label(doc), "o"),
                            color=f"C{i}", label=f"{label(doc)}: {name}")
        for text, value in targets:
            ax.axhline(value, color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"target {text}", (0.01, value), xycoords=("axes fraction", "data"), fontsize=7,
                        color="grey", va="bottom")
        ax.set_title(title)
        ax.set_xlabel("hosts")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle("bench/scale.py: the real controller against emulated hosts" + (f" ({note})" if note else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=72)

"""Multi-host Open vSwitch lab harness (see lab/README.md)."""

from lab.netlab import (
    Capture,
    Host,
    Lab,
    LabError,
    Vm,
    cleanup_stale,
    free_tcp_ports,
    run,
    tcp_port_free,
    wait_for,
)

__all__ = [
    "Capture",
    "Host",
    "Lab",
    "LabError",
    "Vm",
    "cleanup_stale",
    "free_tcp_ports",
    "run",
    "tcp_port_free",
    "wait_for",
]

"""The tunnel kinds the overlay can use: the one place that knows them.

Config choices, the OpenAPI enum, port names, the lab, the demo, the benchmarks and the
Mininet topologies all read this table. Adding a kind is one line in KINDS plus its tests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from controller.model.choices import by_name


class UnknownTunnelKind(ValueError):
    pass


@dataclass(frozen=True)
class TunnelKind:
    name: str  # what config, REST and the lab call it
    prefix: str  # port names: <prefix>-<remote ip in hex>, short enough for a 15-char name
    ovsdb_type: str  # the Interface row's type
    udp_port: int | None  # IANA destination port (OVS's default); None: not carried over UDP

    def port_name(self, remote_ip: str) -> str:
        """Deterministic, short (< 16 chars) and unique per peer: e.g. vx-0a630002."""
        return f"{self.prefix}-{int(ipaddress.IPv4Address(remote_ip)):08x}"

    @property
    def flow_port_name(self) -> str:
        """The one port of this kind whose peer each flow sets (controller/pipeline/tunnel_ports.py): vx-flow."""
        return f"{self.prefix}-flow"


KINDS: tuple[TunnelKind, ...] = (
    TunnelKind("vxlan", "vx", "vxlan", 4789),
    TunnelKind("gre", "gre", "gre", None),
    TunnelKind("geneve", "gnv", "geneve", 6081),
)
NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
DEFAULT = "vxlan"
_BY_NAME = {k.name: k for k in KINDS}
_BY_OVSDB_TYPE = {k.ovsdb_type: k for k in KINDS}


def get(name: str) -> TunnelKind:
    """The kind called name; an unknown name is an error, never a fallback."""
    return by_name(_BY_NAME, name, "tunnel kind", UnknownTunnelKind)


def of_interface(ovsdb_type: str) -> TunnelKind | None:
    """The kind of an OVSDB Interface type, or None for ports that are not our tunnels."""
    return _BY_OVSDB_TYPE.get(ovsdb_type)

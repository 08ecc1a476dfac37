"""What the pipeline and the core are computed with: the settings chosen at start, holding the mode
objects themselves (learning_modes.py, tunnel_ports.py), never their names.

No default lives here: the [overlay] options declare them, once (controller/shell/config.py), and
config.settings() builds these from a parsed config, config.defaults() from the options' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.pipeline import tunnel_kinds as tunnels
from controller.pipeline.learning_modes import Learning
from controller.pipeline.tunnel_ports import TunnelPorts


@dataclass(frozen=True, kw_only=True)
class Settings:
    learning: Learning  # [overlay] mac_learning: what differs between the ways MACs are learned
    tunnel_type: str
    tunnel_ports: TunnelPorts  # one port per peer, or one per kind whose peer the flow sets
    mac_idle_timeout: int
    learn_rate: int  # packet-ins/s per host
    flood_rate: int  # ARP/NS floods for unknown IPs, per host
    unknown_ip_holddown: int  # seconds a host drops requests for an IP nobody answered
    max_endpoints: int  # learned endpoints per (host, tenant); beyond it nothing more is learned
    host_grace: float  # seconds a host may be unreachable before its endpoints are withdrawn

    def __post_init__(self) -> None:
        tunnels.get(self.tunnel_type)  # an unknown kind is an error here, not a silent fallback

"""What the pipeline is computed with: the settings chosen at start (controller/shell/config.py
builds them from the options) and the mode objects they name."""

from __future__ import annotations

from dataclasses import dataclass

from controller.pipeline import learning_modes
from controller.pipeline import tunnel_kinds as tunnels
from controller.pipeline.learning_modes import MODE_CONTROLLER, Learning
from controller.pipeline.tunnel_ports import MESH, TunnelPorts


@dataclass(frozen=True)
class Settings:
    mode: str = MODE_CONTROLLER
    tunnel_type: str = tunnels.DEFAULT
    tunnel_ports: TunnelPorts = MESH  # one port per peer, or one per kind whose peer the flow sets
    mac_idle_timeout: int = 300
    learn_hard_timeout: int = 300  # the article's learn() entry lifetime
    learn_rate: int = 200  # packet-ins/s per host
    flood_rate: int = 100  # ARP/NS floods for unknown IPs, per host
    unknown_ip_holddown: int = 3  # seconds a host drops requests for an IP nobody answered
    max_endpoints: int = 1000  # learned endpoints per (host, tenant); beyond it nothing more is learned
    host_grace: float = 30.0  # seconds a host may be unreachable before its endpoints are withdrawn

    def __post_init__(self) -> None:
        tunnels.get(self.tunnel_type)  # an unknown kind is an error here, not a silent fallback
        learning_modes.get(self.mode)

    @property
    def learning(self) -> Learning:
        """How MACs are learned (controller/pipeline/learning_modes.py): what differs between the modes."""
        return learning_modes.get(self.mode)

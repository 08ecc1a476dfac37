"""How a host's br1 reaches its peers: `[overlay] tunnel_ports = mesh | flow`.

mesh  one port per peer (the article's, Neutron's): N-1 ports per host, each classified.
flow  one port per kind with remote_ip=flow, key=flow: the flow sets tun_dst to the peer;
      arriving traffic says its sender in tun_src (notes/ovs_probe.md section 7).

The mode is chosen once (settings) as one of the two objects below; everything that differs
between the modes is a method here, so no caller asks which mode it is in, and only this module
knows the flow-based port by its remote_ip (a unit test fails on a comparison with a mode's name
anywhere else).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from controller.model import flows as f
from controller.model.choices import by_name
from controller.model.state import Host, HostView, TunnelPort
from controller.pipeline import tunnel_kinds

FLOW = "flow"  # the remote_ip of a flow-based port (options:remote_ip=flow)


def _flow_port(view: HostView, kind: str) -> TunnelPort | None:
    return next((p for p in view.tunnels if p.remote_ip == FLOW and p.type == kind and p.ofport), None)


def _output(port: TunnelPort | None, peer_ip: str) -> tuple[f.Action, ...] | None:
    """Out of the port toward the peer; a flow-based port is told the peer in tun_dst."""
    if port is None or not port.ofport:
        return None
    return _actions(port.ofport, peer_ip if port.remote_ip == FLOW else None)


@lru_cache(maxsize=1 << 16)  # one tuple per (port, peer): every entry toward the peer shares it (and its encoding)
def _actions(ofport: int, tun_dst: str | None) -> tuple[f.Action, ...]:
    if tun_dst is not None:
        return (f.SetField("tun_ipv4_dst", tun_dst), f.Output(ofport))
    return (f.Output(ofport),)


def port_name(kind: str, remote_ip: str) -> str:
    """The name of our port of a kind toward remote_ip (or of the flow-based one)."""
    k = tunnel_kinds.get(kind)
    return k.flow_port_name if remote_ip == FLOW else k.port_name(remote_ip)


def is_flow_remote(remote_ip: str) -> bool:
    """Is a port with this remote_ip the flow-based one (the lab reads ports as OVS shows them)?"""
    return remote_ip == FLOW


def reaches_every_peer(ports: Iterable[TunnelPort]) -> bool:
    """Is one of these the flow-based port (remote_ip=flow), the one that reaches every peer?"""
    return any(p.remote_ip == FLOW for p in ports)


def peer_set_by(actions: Iterable[f.Action]) -> str | None:
    """The peer a flow-based port's actions send to (their tun_dst), or None: not through one."""
    return next((str(a.value) for a in actions if isinstance(a, f.SetField) and a.field == "tun_ipv4_dst"), None)


def peer_of(remote_ip: str, sent: Mapping[str, object]) -> str:
    """The peer a frame sent out of a tunnel port goes to: the port's remote IP, or (the flow-based
    port) the tun_dst the flow set."""
    return str(sent.get("tun_ipv4_dst", "")) if remote_ip == FLOW else remote_ip


def port_state(port: TunnelPort | None) -> str:
    """A port as the operator sees it: created (ours), adopted (made by hand), missing (none usable)."""
    return "missing" if port is None else "created" if port.managed else "adopted"


def ingress(host: Host, sender_ip: str, kind: str) -> TunnelPort | None:
    """The port frames from a peer arrive by: the host's port toward it, or its flow-based port."""
    return host.tunnel_to(sender_ip, kind) or host.tunnel_to(FLOW, kind)


class _Ports:
    per_peer: bool

    def port_toward(self, host: Host, peer_ip: str, kind: str) -> TunnelPort | None:
        raise NotImplementedError

    def holds_other(self, view: HostView, kind: str) -> bool:
        """Ports we made of another kind or the other mode (after a reload): they go once ours are up."""
        flow = not self.per_peer
        return any(p.managed and (p.type != kind or (p.remote_ip == FLOW) != flow) for p in view.tunnels)

    def classify_port(self, kind: str, peer_ip: str) -> str:
        """The name of the port traffic from a peer arrives by: its own (mesh) or the flow port."""
        return port_name(kind, peer_ip if self.per_peer else FLOW)

    def output(self, host: Host, peer_ip: str, kind: str) -> tuple[f.Action, ...] | None:
        """The actions that send a frame to the peer (None: no port toward it is up)."""
        return _output(self.port_toward(host, peer_ip, kind), peer_ip)

    def states(self, host: Host, kind: str) -> tuple[dict[str, str], str]:
        """How the host reaches its peers, as port_toward chooses, for a summary without a pass
        per peer: (peer ip -> the state of the host's own port toward it, the state toward any
        peer not in that map)."""
        shared = host.tunnel_to(FLOW, kind)
        if shared is not None and not self.per_peer:  # the flow port first: it reaches every peer
            return {}, port_state(shared)
        own = {ip: port_state(p) for (ip, t), p in host.tunnel_index.items() if t == kind and ip != FLOW}
        return own, port_state(shared)


@dataclass(frozen=True)
class Mesh(_Ports):
    name: str = "mesh"
    learn_tun_dst: bool = False  # learn() outputs to the port the frame came in by
    per_peer: bool = True  # a host joining needs a port on every other host

    def port_toward(self, host: Host, peer_ip: str, kind: str) -> TunnelPort | None:
        """The peer's port; while switching from flow, the flow port until that is up (the tunnel
        indexes are by remote IP: this runs for every entry toward a peer)."""
        return host.tunnel_to(peer_ip, kind) or host.tunnel_to(FLOW, kind)

    def missing(self, host: Host, kind: str, peer_ips: Iterable[str]) -> list[str]:
        """Remote IPs to make a port toward (ours, or one made by hand and adopted, counts)."""
        return [ip for ip in peer_ips if not host.has_tunnel_to(ip, kind)]

    def replaced(self, view: HostView, kind: str, peer_ips: Iterable[str]) -> list[TunnelPort]:
        """Our ports this mode does not use, once every peer's port is up (no gap while switching)."""
        up = {p.remote_ip for p in view.tunnels if p.type == kind and p.ofport}
        if not set(peer_ips) <= up:
            return []
        return [p for p in view.tunnels if p.managed and (p.type != kind or p.remote_ip == FLOW)]


@dataclass(frozen=True)
class FlowBased(_Ports):
    name: str = "flow"
    learn_tun_dst: bool = True  # learn() also sends the reply to the frame's tun_src
    per_peer: bool = False  # one port reaches every peer: a host joining asks nothing of the others

    def port_toward(self, host: Host, peer_ip: str, kind: str) -> TunnelPort | None:
        """The flow port; while switching from mesh, the peer's port until that is up."""
        return host.tunnel_to(FLOW, kind) or host.tunnel_to(peer_ip, kind)

    def missing(self, host: Host, kind: str, peer_ips: Iterable[str]) -> list[str]:
        return [] if host.has_tunnel_to(FLOW, kind) else [FLOW]

    def replaced(self, view: HostView, kind: str, peer_ips: Iterable[str]) -> list[TunnelPort]:
        if _flow_port(view, kind) is None:
            return []
        return [p for p in view.tunnels if p.managed and (p.type != kind or p.remote_ip != FLOW)]


MESH = Mesh()
FLOW_BASED = FlowBased()
MODES: dict[str, Mesh | FlowBased] = {m.name: m for m in (MESH, FLOW_BASED)}
TunnelPorts = Mesh | FlowBased


def get(name: str) -> TunnelPorts:
    return by_name(MODES, name, "tunnel_ports")

"""Operations the core asks the shell to carry out: values, so tests read them without a switch."""

from __future__ import annotations

from dataclasses import dataclass

from controller.model.flows import Flow, GroupEntry, Match, Meter


@dataclass(frozen=True)
class FlowMod:
    dpid: int
    flow: Flow
    delete: bool = False  # strict delete by the flow's key


@dataclass(frozen=True)
class FlowDelete:
    """Strict delete of a flow known only by its key (read back from the switch, not made by us)."""

    dpid: int
    table: int
    priority: int
    match: Match


@dataclass(frozen=True)
class FlowPurge:
    """Delete, non-strict, every flow in a table that matches: for entries the switch made (learn())."""

    dpid: int
    table: int
    match: Match


@dataclass(frozen=True)
class GroupMod:
    dpid: int
    group: GroupEntry
    command: str  # "add" | "modify" | "delete"


@dataclass(frozen=True)
class MeterMod:
    dpid: int
    meter: Meter
    command: str  # "add" | "modify" | "delete"


@dataclass(frozen=True)
class ReadSwitch:
    """Read back what a switch holds (flows with cookies, groups, meters) before reconciling it."""

    dpid: int


@dataclass(frozen=True)
class Wipe:
    """Remove every flow, group and meter: only when a switch could not be read back."""

    dpid: int


@dataclass(frozen=True)
class Disconnect:
    """Close a switch's OpenFlow connection: it is not the host it claims to be (controller/core/identity.py)."""

    dpid: int
    why: str


@dataclass(frozen=True)
class AddTunnelPorts:
    """On a host's tunnel bridge, one port of a tunnel kind per remote IP (or the one flow-based port):
    the southbound encodes it as an OVSDB transaction (controller/southbound/ovsdb_model.py)."""

    system_id: str
    bridge_uuid: str
    kind: str  # a tunnel kind's name (controller/pipeline/tunnel_kinds.py)
    local_ip: str
    remote_ips: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class DeletePorts:
    """Detach ports (by their Port row's uuid) from a host's tunnel bridge."""

    system_id: str
    bridge_uuid: str
    port_uuids: tuple[str, ...]
    why: str


OvsdbOp = AddTunnelPorts | DeletePorts  # what goes to a host's OVSDB, not its switch
Op = (FlowMod | FlowDelete | FlowPurge | GroupMod | MeterMod | ReadSwitch | Wipe | Disconnect | AddTunnelPorts
      | DeletePorts)

"""OVSDB without a socket: decode the monitored tables into a HostView, build tunnel transactions."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from controller.model.ops import AddTunnelPorts, DeletePorts, OvsdbOp
from controller.model.state import HostView, TunnelPort
from controller.pipeline import tunnel_kinds as tunnels
from controller.pipeline import tunnel_ports

MANAGED_KEY = "overlay-managed"  # external_ids mark on the tunnel ports this controller made

# What we monitor: only the columns a HostView is made of.
MONITORED = {
    "Open_vSwitch": ["external_ids", "bridges"],
    "Bridge": ["name", "datapath_id", "ports"],
    "Port": ["name", "interfaces", "tag", "external_ids"],
    "Interface": ["name", "type", "options", "ofport", "external_ids"],
}

Replica = dict[str, dict[str, dict[str, Any]]]  # table -> row uuid -> column -> python value


def decode(datum: Any) -> Any:
    """OVSDB JSON datum -> Python: sets become lists, maps dicts, uuids strings."""
    if isinstance(datum, list) and len(datum) == 2:
        kind, value = datum
        if kind == "set":
            return [decode(v) for v in value]
        if kind == "map":
            return {decode(k): decode(v) for k, v in value}
        if kind in ("uuid", "named-uuid"):
            return value
    return datum


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def apply_update(replica: Replica, table_updates: dict) -> None:
    """Apply a monitor reply or update notification (OVSDB <table-updates>)."""
    for table, rows in table_updates.items():
        current = replica.setdefault(table, {})
        for uuid, change in rows.items():
            new = change.get("new")
            if new is None:
                current.pop(uuid, None)
            else:
                row = current.setdefault(uuid, {})
                row.update({col: decode(v) for col, v in new.items()})


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def host_view(replica: Replica, tunnel_bridge: str, integration_bridge: str) -> HostView | None:
    """The HostView of one connected OVSDB, or None until it has a system-id."""
    system = next(iter(replica.get("Open_vSwitch", {}).values()), None)
    if system is None:
        return None
    ids = system.get("external_ids") or {}
    system_id = ids.get("system-id")
    if not system_id:
        return None
    overlay_ip = ids.get("overlay-ip")
    try:
        overlay_ip = str(ipaddress.IPv4Address(overlay_ip)) if overlay_ip else None
    except ValueError:
        overlay_ip = None
    bridges = replica.get("Bridge", {})
    ports = replica.get("Port", {})
    ifaces = replica.get("Interface", {})

    def bridge(name: str) -> tuple[str, dict] | tuple[None, None]:
        for uuid, row in bridges.items():
            if row.get("name") == name:
                return uuid, row
        return None, None

    view = HostView(system_id=system_id, overlay_ip=overlay_ip)
    br_uuid, br1 = bridge(tunnel_bridge)
    found: list[TunnelPort] = []
    patch = None
    if br1 is not None:
        for port_uuid in as_list(br1.get("ports", [])):
            port = ports.get(port_uuid, {})
            for iface_uuid in as_list(port.get("interfaces", [])):
                iface = ifaces.get(iface_uuid, {})
                iface_type = iface.get("type", "")
                kind = tunnels.of_interface(iface_type)
                ofport = _int_or_none(iface.get("ofport"))
                options = iface.get("options") or {}
                if iface_type == "patch" and patch is None:
                    patch = ofport
                elif kind is not None and options.get("remote_ip"):  # an IP, or "flow"
                    managed = (port.get("external_ids") or {}).get(MANAGED_KEY) == "true"
                    found.append(TunnelPort(iface.get("name", ""), kind.name, options["remote_ip"], ofport,
                                            managed, port_uuid))
        dpid = br1.get("datapath_id")
        view = HostView(system_id=system_id, overlay_ip=overlay_ip,
                        datapath_id=int(dpid, 16) if isinstance(dpid, str) and dpid else None,
                        bridge_uuid=br_uuid, patch_ofport=patch,
                        tunnels=tuple(sorted(found, key=lambda p: p.name)))
    _, br0 = bridge(integration_bridge)
    if br0 is not None:
        br0_ports = [ports.get(p, {}) for p in as_list(br0.get("ports", []))]
        tags = frozenset(p.get("tag") for p in br0_ports if isinstance(p.get("tag"), int))
        # Hypervisors (libvirt, Nova) record a VM interface's MAC in attached-mac.
        attached = sorted(((ifaces.get(i, {}).get("external_ids") or {}).get("attached-mac", "").lower(),
                           p.get("name", ""))
                          for p in br0_ports for i in as_list(p.get("interfaces", [])))
        port_vlans = tuple(sorted((p.get("name", ""), p["tag"]) for p in br0_ports if isinstance(p.get("tag"), int)))
        view = replace(view, member_vlans=tags, attached=tuple(a for a in attached if a[0]), port_vlans=port_vlans)
    return replace(view, problems=problems(replica, tunnel_bridge, integration_bridge))


NO_SYSTEM_ID = "no external_ids:system-id (ovs-vsctl set Open_vSwitch . external_ids:system-id=NAME)"


def unidentified(replica: Replica) -> str | None:
    """Why a connected OVSDB cannot be a host at all (it has no name), or None."""
    system = next(iter(replica.get("Open_vSwitch", {}).values()), None)
    if system is None:  # the monitor reply has not come yet
        return None
    return None if (system.get("external_ids") or {}).get("system-id") else NO_SYSTEM_ID


def problems(replica: Replica, tunnel_bridge: str, integration_bridge: str) -> tuple[str, ...]:
    """Why a named host cannot join the overlay: what its operator must fix, in their words."""
    out = []
    system = next(iter(replica.get("Open_vSwitch", {}).values()), {})
    ip = (system.get("external_ids") or {}).get("overlay-ip")
    if not ip:
        out.append("no external_ids:overlay-ip (its underlay IPv4 address)")
    else:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            out.append(f"external_ids:overlay-ip {ip!r} is not an IPv4 address")
    by_name = {row.get("name"): row for row in replica.get("Bridge", {}).values()}
    br1 = by_name.get(tunnel_bridge)
    if br1 is None:
        out.append(f"no bridge {tunnel_bridge}")
    else:
        ports = replica.get("Port", {})
        ifaces = replica.get("Interface", {})
        if not any(ifaces.get(i, {}).get("type") == "patch"
                   for p in as_list(br1.get("ports", [])) for i in as_list(ports.get(p, {}).get("interfaces", []))):
            out.append(f"no patch port on {tunnel_bridge} (to {integration_bridge})")
    if integration_bridge not in by_name:
        out.append(f"no bridge {integration_bridge}")
    return tuple(out)


def tunnel_name(tunnel_type: str, remote_ip: str) -> str:
    """Deterministic, short (< 16 chars) and unique per peer: e.g. vx-0a630002 (vx-flow)."""
    return tunnel_ports.port_name(tunnel_type, remote_ip)


def add_tunnels_txn(bridge_uuid: str, tunnel_type: str, local_ip: str, remote_ips: list[str]) -> tuple:
    """One transaction adding a tunnel port per remote IP, or "flow" (lab/README.md: batch them)."""
    ops: list[dict] = []
    port_refs = []
    managed = ["map", [[MANAGED_KEY, "true"]]]
    kind = tunnels.get(tunnel_type)
    for i, ip in enumerate(remote_ips):
        name = tunnel_ports.port_name(tunnel_type, ip)
        options = ["map", [["key", "flow"], ["local_ip", local_ip], ["remote_ip", ip]]]
        ops.append({"op": "insert", "table": "Interface", "uuid-name": f"iface{i}",
                    "row": {"name": name, "type": kind.ovsdb_type, "options": options}})
        ops.append({"op": "insert", "table": "Port", "uuid-name": f"port{i}",
                    "row": {"name": name, "interfaces": ["named-uuid", f"iface{i}"],
                            "external_ids": managed}})
        port_refs.append(["named-uuid", f"port{i}"])
    ops.append({"op": "mutate", "table": "Bridge", "where": [["_uuid", "==", ["uuid", bridge_uuid]]],
                "mutations": [["ports", "insert", ["set", port_refs]]]})
    return tuple(ops)


def del_ports_txn(bridge_uuid: str, port_uuids: list[str]) -> tuple:
    """Detach ports from the bridge; OVSDB garbage-collects the Port and Interface rows."""
    refs = [["uuid", u] for u in port_uuids]
    return ({"op": "mutate", "table": "Bridge", "where": [["_uuid", "==", ["uuid", bridge_uuid]]],
             "mutations": [["ports", "delete", ["set", refs]]]},)


def transaction(op: OvsdbOp) -> tuple:
    """The OVSDB JSON operations that carry out one of the core's OVSDB operations."""
    if isinstance(op, AddTunnelPorts):
        return add_tunnels_txn(op.bridge_uuid, op.kind, op.local_ip, list(op.remote_ips))
    if isinstance(op, DeletePorts):
        return del_ports_txn(op.bridge_uuid, list(op.port_uuids))
    raise TypeError(op)

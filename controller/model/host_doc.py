"""The overlay document's host sections (controller/model/overlay_doc.py; docs/user/gitops.md): the
operator's admissions and the rules of br0 ports (controller/core/admission.py), as pure functions:
their rules, what applying them changes, and their export.

    hosts:                     # host id -> the operator's decision
      h1: {admitted: true}     # admitted (as PUT /v1/hosts/h1/admission)
      h9: {admitted: false}    # revoked
    ports:                     # host id -> br0 port -> its allowed addresses
      h1:
        vm1: {macs: ["02:00:00:00:00:01"], ips: [10.0.0.1]}   # as PUT /v1/hosts/h1/ports/vm1

A section the document leaves out (or leaves empty: `hosts:` with nothing, null) is not the
document's: applying it never touches those records, with prune neither. A section given (`{}`
too) is the document's whole: with prune, the decisions or rules it does not name are removed. So a
file of tenants alone, written before these sections existed, keeps meaning what it meant.

Each entry is checked by the REST API's own declaration (controller/model/host_rules.py: ADMISSION,
PORT_RULE); a refusal's path names the field from the document's top, e.g. ("ports", "h1", "vm1",
"macs", 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.model import host_rules
from controller.model.state import PortRule
from controller.model.tenant_rules import Invalid, host_id

PortKey = tuple[str, str]  # (host id, br0 port name)


def _at(path: tuple[str, ...], err: Invalid) -> Invalid:
    """err, its path taken from the document's top (overlay_doc.py puts the path's text first)."""
    return Invalid(str(err), path + err.path)


def _key(section: str, value: Any, *within: str) -> str:
    """A mapping key that must be a host id (or, under a host in 'ports', a port name)."""
    try:
        return host_rules.port_name(value, "the port") if within else host_id(value, "the host")
    except Invalid as err:
        raise Invalid(str(err), (section, *within, str(value))) from None


def _mapping(value: Any, path: tuple[str, ...], says: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"must be a mapping of {says}", path)
    return value


def parse_hosts(spec: Any) -> dict[str, bool] | None:
    """The `hosts` section: host id -> admitted (True) or revoked (False); None: not the document's."""
    if spec is None:
        return None
    out: dict[str, bool] = {}
    for host, decision in _mapping(spec, ("hosts",), "host id -> {admitted: true|false}").items():
        host = _key("hosts", host)
        try:
            out[host] = host_rules.admission_from_json(decision)
        except Invalid as err:
            raise _at(("hosts", host), err) from None
    return out


def parse_ports(spec: Any) -> dict[PortKey, PortRule] | None:
    """The `ports` section: (host, port) -> its rule; None: not the document's."""
    if spec is None:
        return None
    out: dict[PortKey, PortRule] = {}
    for host, ports in _mapping(spec, ("ports",), "host id -> br0 port -> {macs, ips}").items():
        host = _key("ports", host)
        for port, rule in _mapping(ports, ("ports", host), "br0 port -> {macs, ips}").items():
            port = _key("ports", port, host)
            try:
                out[(host, port)] = host_rules.port_rule_from_json(rule, host, port)
            except Invalid as err:
                raise _at(("ports", host, port), err) from None
    return out


def to_doc(decisions: Mapping[str, bool], rules: list[PortRule]) -> dict:
    """The `hosts` and `ports` sections of these records (export): what parse_* reads back alike."""
    ports: dict[str, dict[str, dict]] = {}
    for rule in sorted(rules, key=lambda r: (r.host, r.port)):
        spec: dict[str, Any] = {"macs": sorted(rule.macs)}
        if rule.ips:
            spec["ips"] = sorted(rule.ips)
        ports.setdefault(rule.host, {})[rule.port] = spec
    return {"hosts": {h: {"admitted": a} for h, a in sorted(decisions.items())}, "ports": ports}


# ---- what applying them changes ------------------------------------------------------------

@dataclass
class HostWrites:
    """Host records to write with the tenants, in one transaction: None removes one (the decision
    goes: the host is as `[overlay] admission` and admitted_hosts say; the rule goes: the port is open)."""

    admissions: dict[str, bool | None] = field(default_factory=dict)
    rules: dict[PortKey, PortRule | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.admissions) + len(self.rules)


@dataclass
class SectionPlan:
    """What applying one section (hosts or ports) changes, each list by key."""

    create: list[tuple[Any, Any]] = field(default_factory=list)  # (key, then)
    change: list[tuple[Any, Any, Any]] = field(default_factory=list)  # (key, now, then)
    delete: list[tuple[Any, Any]] = field(default_factory=list)  # (key, now): only with prune
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)  # not in the section, left alone (no prune)

    @property
    def changes(self) -> bool:
        return bool(self.create or self.change or self.delete)


def _plan(current: Mapping[Any, Any], desired: Mapping[Any, Any] | None, prune: bool) -> SectionPlan:
    out = SectionPlan()
    if desired is None:  # not the document's
        return out
    for key in sorted(desired):
        now, then = current.get(key), desired[key]
        if now is None:
            out.create.append((key, then))
        elif now != then:
            out.change.append((key, now, then))
        else:
            out.unchanged += 1
    for key in sorted(set(current) - set(desired)):
        if prune:
            out.delete.append((key, current[key]))
        else:
            out.kept.append("/".join(key) if isinstance(key, tuple) else key)
    return out


def _admission(host: str, admitted: bool) -> dict:
    return {"host": host, "admitted": admitted}


def _rule(rule: PortRule) -> dict:
    return rule.to_json()


@dataclass
class HostPlan:
    """What applying the host sections changes: admissions, then port rules."""

    hosts: SectionPlan = field(default_factory=SectionPlan)
    ports: SectionPlan = field(default_factory=SectionPlan)

    @property
    def changes(self) -> bool:
        return self.hosts.changes or self.ports.changes

    def writes(self) -> HostWrites:
        out = HostWrites()
        for host, admitted in self.hosts.create:
            out.admissions[host] = admitted
        for host, _, admitted in self.hosts.change:
            out.admissions[host] = admitted
        for host, _ in self.hosts.delete:
            out.admissions[host] = None
        for key, rule in self.ports.create:
            out.rules[key] = rule
        for key, _, rule in self.ports.change:
            out.rules[key] = rule
        for key, _ in self.ports.delete:
            out.rules[key] = None
        return out

    def to_json(self) -> dict:
        h, p = self.hosts, self.ports
        return {
            "hosts": {"create": [_admission(k, a) for k, a in h.create],
                      "change": [{"host": k, "from": now, "to": then} for k, now, then in h.change],
                      "delete": [_admission(k, a) for k, a in h.delete], "unchanged": h.unchanged, "kept": h.kept},
            "ports": {"create": [_rule(r) for _, r in p.create],
                      "change": [{"host": k[0], "port": k[1], "from": _rule(now), "to": _rule(then)}
                                 for k, now, then in p.change],
                      "delete": [_rule(r) for _, r in p.delete], "unchanged": p.unchanged, "kept": p.kept},
        }


def plan(decisions: Mapping[str, bool], rules: Mapping[str, Mapping[str, PortRule]],
         desired_hosts: Mapping[str, bool] | None, desired_ports: Mapping[PortKey, PortRule] | None,
         prune: bool) -> HostPlan:
    """What makes the current records (the core's HostPolicy: decisions, host -> port -> rule) the
    document's sections; a section that is None is left alone."""
    current_rules = {(host, port): rule for host, ports in rules.items() for port, rule in ports.items()}
    return HostPlan(_plan(decisions, desired_hosts, prune), _plan(current_rules, desired_ports, prune))

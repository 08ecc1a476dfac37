"""The overlay as a document: what `overlayctl apply -f overlay.yaml` declares and `overlayctl
export` writes (docs/user/gitops.md), as pure functions: its rules, what applying it would change
(the plan), and whether the result holds together. The REST API takes it as JSON (POST /v1/apply,
controller/northbound/declare.py); overlayctl reads it from YAML and names the line of a field the
rules refuse (controller/cli/overlay_file.py).

    version: 1                 # optional; the only version there is
    tenants:                   # name -> the tenant, as the REST API's tenant without its name
      blue: {vni: 5001, vlan: 10}
      red:
        vni: 5002
        vlan: 20
        hosts: [h1, h2]        # optional: where it exists (absent: every host)
        vlans: {h2: 21}        # optional: its VLAN on a host, where not `vlan`
    hosts:                     # optional: the operator's admissions (controller/model/host_doc.py)
      h1: {admitted: true}
    ports:                     # optional: allowed addresses per br0 port (host_doc.py)
      h1: {vm1: {macs: ["02:00:00:00:00:01"], ips: [10.0.0.1]}}

Every refusal is a tenant_rules.Invalid whose `path` names the field from the document's top
(e.g. ("tenants", "blue", "vni")), so that the file's line can be named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.model import host_doc
from controller.model.state import PortRule, Tenant, vlan_clash
from controller.model.tenant_rules import Conflict, Invalid, tenant_from_json

VERSION = 1
TOP = ("version", "tenants", "hosts", "ports")

Path = tuple[str | int, ...]


def path_text(path: Path) -> str:
    """('tenants', 'blue', 'hosts', 0) -> 'tenants.blue.hosts[0]'."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _at(path: Path, err: Invalid) -> Invalid:
    """err, its path taken from the document's top."""
    full = path + err.path
    return Invalid(f"{path_text(full)}: {err}" if full else str(err), full)


@dataclass(frozen=True)
class Document:
    """What a document declares: tenants by name (in its order); the host sections, None where
    the document leaves them out (host_doc.py: then they are not its to change)."""

    tenants: dict[str, Tenant]
    hosts: dict[str, bool] | None = None
    ports: dict[host_doc.PortKey, PortRule] | None = None


def read(doc: Any) -> Document:
    """The whole document. Invalid names the field at fault: a value, an unknown section, two
    tenants of the file that clash, a host's admission or a port's rule."""
    tenants = parse(doc)
    try:
        return Document(tenants, host_doc.parse_hosts(doc.get("hosts")), host_doc.parse_ports(doc.get("ports")))
    except Invalid as err:
        raise _at((), err) from None


def parse(doc: Any) -> dict[str, Tenant]:
    """The tenants a document declares, by name, in its order (its host sections: read()).
    Invalid names the field at fault: a value, an unknown section, or two tenants that clash."""
    if not isinstance(doc, dict):
        raise Invalid("the document must be a mapping with a 'tenants' section")
    for key in doc:
        if key not in TOP:
            raise Invalid(f"{key}: unknown section; a document has {', '.join(repr(k) for k in TOP)}", (key,))
    version = doc.get("version", VERSION)
    if type(version) is not int or version != VERSION:  # noqa: E721  (not True, not 1.0)
        raise Invalid(f"version: must be {VERSION}", ("version",))
    specs = doc.get("tenants")
    specs = {} if specs is None else specs
    if not isinstance(specs, dict):
        raise Invalid("tenants: must be a mapping of tenant name -> its vni, vlan, hosts, vlans", ("tenants",))
    tenants: dict[str, Tenant] = {}
    for name, spec in specs.items():
        where: Path = ("tenants", name)
        if not isinstance(spec, dict):
            raise Invalid(f"{path_text(where)}: must be a mapping with 'vni' and 'vlan'", where)
        try:
            tenants[name] = tenant_from_json(spec, name=name)
        except Invalid as err:
            raise _at(where, err) from None
    _no_clash_within(tenants)
    return tenants


def _no_clash_within(tenants: Mapping[str, Tenant]) -> None:
    """Two tenants of the file on one VNI, or on one VLAN of a host where both exist: the later one
    is named (with the earlier)."""
    by_vni: dict[int, str] = {}
    for name, tn in tenants.items():
        if tn.vni in by_vni:
            raise Invalid(f"tenants.{name}.vni: VNI {tn.vni} is tenant '{by_vni[tn.vni]}''s too, in this file",
                          ("tenants", name, "vni"))
        by_vni[tn.vni] = name
    for name, other in _clashes(tenants, tenants, only_earlier=True):
        tn = tenants[name]
        where = vlan_clash(tn, other)
        place = "every host" if where == "*" else f"host '{where}'"
        field_path: Path = ("tenants", name, "vlan") if where == "*" or where not in dict(tn.vlans) \
            else ("tenants", name, "vlans", where)  # type: ignore[assignment]
        raise Invalid(f"{path_text(field_path)}: VLAN {tn.vlan_on(str(where))} on {place} is tenant "
                      f"'{other.name}''s too, in this file", field_path)


def _vlans(tn: Tenant) -> set[int]:
    return {tn.vlan} | {v for _, v in tn.vlans}


def _clashes(these: Mapping[str, Tenant], others: Mapping[str, Tenant],
             only_earlier: bool = False) -> list[tuple[str, Tenant]]:
    """(name in these, a tenant of others it shares a VLAN of a host with): candidates by VLAN
    number first, so that a thousand tenants cost thousands of checks, not a million."""
    by_vlan: dict[int, list[Tenant]] = {}
    order = {name: i for i, name in enumerate(others)}
    for tn in others.values():
        for v in _vlans(tn):
            by_vlan.setdefault(v, []).append(tn)
    out = []
    for name, tn in these.items():
        seen: set[str] = set()
        for v in sorted(_vlans(tn)):
            for other in by_vlan.get(v, ()):
                if other.name == name or other.name in seen:
                    continue
                if only_earlier and order[other.name] > order.get(name, -1):
                    continue
                seen.add(other.name)
                if vlan_clash(tn, other) is not None:
                    out.append((name, other))
    return out


def to_doc(tenants: Mapping[str, Tenant] | list[Tenant], decisions: Mapping[str, bool] | None = None,
           rules: list[PortRule] | None = None) -> dict:
    """The document of these tenants (export) and, given, of these host records: what read()
    reads back as the same, by name, with the optional fields only where they say something."""
    listing = tenants.values() if isinstance(tenants, Mapping) else tenants
    out: dict[str, dict] = {}
    for tn in sorted(listing, key=lambda t: t.name):
        spec: dict[str, Any] = {"vni": tn.vni, "vlan": tn.vlan}
        if tn.hosts is not None:
            spec["hosts"] = sorted(tn.hosts)
        if tn.vlans:
            spec["vlans"] = dict(sorted(tn.vlans))
        out[tn.name] = spec
    hosts = host_doc.to_doc(decisions, rules or []) if decisions is not None else {}
    return {"version": VERSION, "tenants": out, **hosts}


# ---- what applying it changes --------------------------------------------------------------

@dataclass
class Plan:
    """What applying a document to the current tenants does (each list by name)."""

    create: list[Tenant] = field(default_factory=list)
    change: list[tuple[Tenant, Tenant]] = field(default_factory=list)  # (now, then)
    delete: list[Tenant] = field(default_factory=list)  # only with prune
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)  # not in the document, left alone (no prune)
    hosts: host_doc.HostPlan = field(default_factory=host_doc.HostPlan)  # admissions and port rules

    @property
    def tenant_changes(self) -> bool:
        return bool(self.create or self.change or self.delete)

    @property
    def changes(self) -> bool:
        return self.tenant_changes or self.hosts.changes

    def puts(self) -> list[Tenant]:
        return self.create + [then for _, then in self.change]

    def deletes(self) -> list[str]:
        return [tn.name for tn in self.delete]

    def to_json(self) -> dict:
        return {
            "changes": self.changes,
            "create": [tn.to_json() for tn in self.create],
            "change": [{"name": now.name, "from": now.to_json(), "to": then.to_json(),
                        "fields": [k for k, v in then.to_json().items() if now.to_json()[k] != v]}
                       for now, then in self.change],
            "delete": [tn.to_json() for tn in self.delete],
            "unchanged": self.unchanged,
            "kept": self.kept,
            **self.hosts.to_json(),
        }


def plan(current: Mapping[str, Tenant], desired: Mapping[str, Tenant], prune: bool) -> Plan:
    """What makes the current tenants the document's (and, with prune, deletes the others)."""
    out = Plan()
    for name in sorted(desired):
        tn, now = desired[name], current.get(name)
        if now is None:
            out.create.append(tn)
        elif now != tn:
            out.change.append((now, tn))
        else:
            out.unchanged += 1
    for name in sorted(set(current) - set(desired)):
        if prune:
            out.delete.append(current[name])
        else:
            out.kept.append(name)
    return out


def plan_document(current: Mapping[str, Tenant], decisions: Mapping[str, bool],
                  rules: Mapping[str, Mapping[str, PortRule]], desired: Document, prune: bool) -> Plan:
    """What makes the current tenants and host records (decisions; host -> port -> rule) the document's."""
    out = plan(current, desired.tenants, prune)
    out.hosts = host_doc.plan(decisions, rules, desired.hosts, desired.ports, prune)
    return out


def check(current: Mapping[str, Tenant], p: Plan) -> None:
    """Conflict when a tenant the plan puts clashes with one it keeps (not in the document,
    without prune): VNI or a VLAN of a host. The document's own tenants were checked by parse."""
    puts = {tn.name: tn for tn in p.puts()}
    kept = {name: current[name] for name in p.kept}
    if not puts or not kept:
        return
    kept_vni = {tn.vni: tn.name for tn in kept.values()}
    for name, tn in puts.items():
        if tn.vni in kept_vni:
            raise Conflict(f"tenants.{name}.vni: VNI {tn.vni} is used by tenant '{kept_vni[tn.vni]}', which is "
                           "not in the document (apply with prune to delete it, or add it to the document)",
                           ("tenants", name, "vni"))
    for name, other in _clashes(puts, kept):
        where = vlan_clash(puts[name], other)
        place = "every host" if where == "*" else f"host '{where}'"
        raise Conflict(f"tenants.{name}: VLAN {puts[name].vlan_on(str(where))} on {place} is used by tenant "
                       f"'{other.name}', which is not in the document (apply with prune to delete it, or add "
                       "it to the document)", ("tenants", name))

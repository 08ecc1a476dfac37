"""What a request may say about a host (controller/core/admission.py): an admission, a br0 port's
rule (controller/pipeline/port_security.py). Errors are the API's rule errors (tenant_rules.py:
400, 404, 412); nothing is changed by a request that fails here."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from controller.model.state import PortRule
from controller.model.tenant_rules import HOST_RE, Invalid, host_id

MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
MAX_MACS, MAX_IPS = 64, 256  # per port: allowed-address pairs are a handful (Neutron's default quota: 10)
PORT_RE = HOST_RE  # a br0 port's name as OVSDB reports it: printable, no '/'


def port_name(value: Any, what: str = "the port") -> str:
    if not isinstance(value, str) or not PORT_RE.fullmatch(value):
        raise Invalid(f"{what} must be a br0 port name: 1-255 printable characters, no '/'")
    return value


def admission_from_json(doc: Any) -> bool:
    """{"admitted": true} admits, {"admitted": false} revokes."""
    if not isinstance(doc, dict) or set(doc) != {"admitted"} or not isinstance(doc["admitted"], bool):
        raise Invalid('body must be {"admitted": true} (admit) or {"admitted": false} (revoke)')
    return doc["admitted"]


def _mac(value: Any) -> str:
    mac = value.lower() if isinstance(value, str) else None
    if mac is None or not MAC_RE.fullmatch(mac):
        raise Invalid(f"'macs': {value!r} is not a MAC address like 02:00:00:00:00:01")
    if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
        raise Invalid(f"'macs': {mac} is not a unicast MAC address")
    return mac


def _ip(value: Any) -> str:
    try:
        ip = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None or ip.is_multicast or ip.is_unspecified:
        raise Invalid(f"'ips': {value!r} is not a unicast IPv4 or IPv6 address")
    return str(ip)


def _items(doc: dict, key: str, limit: int) -> list:
    items = doc.get(key, [])
    if not isinstance(items, list) or len(items) > limit:
        raise Invalid(f"'{key}' must be a list of at most {limit} addresses")
    return items


def port_rule_from_json(doc: Any, host: str, port: str) -> PortRule:
    """A port's rule from a request body: {"macs": [...], "ips": [...]}; host and port from the URL."""
    host_id(host, "the host")
    port_name(port)
    if not isinstance(doc, dict):
        raise Invalid("body must be a JSON object")
    unknown = sorted(set(doc) - {"macs", "ips"})
    if unknown:
        raise Invalid(f"unknown field(s) {', '.join(unknown)}: a port rule has 'macs' and 'ips'")
    macs = frozenset(_mac(m) for m in _items(doc, "macs", MAX_MACS))
    if not macs:
        raise Invalid("'macs' must name at least one MAC address the port may send from")
    return PortRule(host, port, macs, frozenset(_ip(i) for i in _items(doc, "ips", MAX_IPS)))

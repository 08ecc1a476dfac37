"""What a request may say about a host (controller/core/admission.py): an admission, a br0 port's
rule (controller/pipeline/port_security.py). The bodies are declared once (controller/model/fields.py):
the checks here and their OpenAPI schemas (controller/northbound/openapi.py) come from ADMISSION and
PORT_RULE. Errors are the API's rule errors (tenant_rules.py: 400, 404, 412); a request that
fails here changes nothing."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from controller.model.fields import Bool, ListOf, Record, Text
from controller.model.state import PortRule
from controller.model.tenant_rules import HOST_RE, Invalid, _fits, host_id

MAX_MACS, MAX_IPS = 64, 256  # per port: allowed-address pairs are a handful (Neutron's default quota: 10)
MAC = Text("a unicast MAC address like 02:00:00:00:00:01",
           re.compile(r"[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}"))  # the group bit clear: unicast
IP = Text("a unicast IPv4 or IPv6 address")
PORT = Text("a br0 port name: 1-255 printable characters, no '/'", HOST_RE)  # as OVSDB reports it
ADMISSION = Record({"admitted": Bool()}, required=("admitted",))  # PUT /v1/hosts/{id}/admission
PORT_RULE = Record({"macs": ListOf(MAC), "ips": ListOf(IP)}, required=("macs",))  # PUT .../ports/{port}


def port_name(value: Any, where: str = "the port") -> str:
    return _fits(PORT, value, where)


def admission_from_json(doc: Any) -> bool:
    """{"admitted": true} admits, {"admitted": false} revokes."""
    return _fits(ADMISSION, doc)["admitted"]


def _ip(value: str, index: int) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        ip = None
    if ip is None or ip.is_multicast or ip.is_unspecified:
        raise Invalid(f"'ips': {value!r} is not {IP.says}", ("ips", index))
    return str(ip)


def port_rule_from_json(doc: Any, host: str, port: str) -> PortRule:
    """A port's rule from a request body: {"macs": [...], "ips": [...]}; host and port from the URL."""
    host_id(host, "the host")
    port_name(port)
    doc = _fits(PORT_RULE, doc)
    macs, ips = doc["macs"], doc.get("ips", [])
    if not 1 <= len(macs) <= MAX_MACS or len(ips) > MAX_IPS:
        raise Invalid(f"a port rule names 1 to {MAX_MACS} MACs and at most {MAX_IPS} IPs",
                      ("ips",) if macs and len(macs) <= MAX_MACS else ("macs",))
    if "00:00:00:00:00:00" in macs:
        raise Invalid(f"'macs': 00:00:00:00:00:00 is not {MAC.says}", ("macs", macs.index("00:00:00:00:00:00")))
    return PortRule(host, port, frozenset(m.lower() for m in macs), frozenset(_ip(v, i) for i, v in enumerate(ips)))

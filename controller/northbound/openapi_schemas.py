"""The schemas of the REST API's OpenAPI description (controller/northbound/openapi.py serves them in
/v1/openapi.json, with the paths): the tenant's from the one declaration requests are checked with
(controller/model/tenant_rules.py, fields.py), the others written out here.
"""

from __future__ import annotations

from typing import Any

from controller.model import events as ev
from controller.model import host_rules, overlay_doc
from controller.model import tenant_rules as rules
from controller.model.fields import Record
from controller.northbound import events
from controller.northbound.pathtrace import TRACE_REQUEST
from controller.northbound.topology import STATES
from controller.pipeline import tunnel_kinds as tunnels


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _worded(record: Record, words: dict[str, dict], **more: Any) -> dict:
    """A record's schema (the declaration requests are checked with) with words added to its fields."""
    schema = record.schema()
    for key, extra in words.items():
        schema["properties"][key] = {**schema["properties"][key], **extra}
    return {**schema, **more}


VLAN = rules.VLAN.schema()
TENANT_WORDS = {
    "name": {"example": "blue"},
    "vni": {"example": 5001,
            "description": "the tenant's tunnel key on the wire (the VNI or GRE key of every tunnel kind)"},
    "vlan": {"example": 10, "description": "its br0 VLAN on every host, unless overridden in 'vlans'"},
    "hosts": {"description": "the hosts it exists on; null = every host"},
    "vlans": {"description": "per-host VLAN overrides: host id -> VLAN (hosts must be in 'hosts' if given)"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"},
        "path": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                 "description": "the field at fault, from the body's top (e.g. [\"tenants\", \"blue\", \"vni\"])"}}},
    "Tenant": _worded(rules.TENANT.requiring(*rules.FIELDS), TENANT_WORDS),
    "TenantCreate": _worded(rules.TENANT, TENANT_WORDS),
    "TenantReplace": _worded(rules.TENANT_REPLACE, TENANT_WORDS,
                             description="the whole tenant; 'name', if given, must be the one in the URL"),
    "TenantPatch": _worded(
        rules.TENANT_PATCH, TENANT_WORDS,
        description="JSON Merge Patch (RFC 7386): given fields replace, null removes ('hosts': null = "
                    "every host, 'vlans': {'h1': null} drops one override)"),
    "Endpoint": {
        "type": "object", "required": ["mac", "ips", "host", "port", "vlan", "last_seen", "idle_s"],
        "properties": {
            "mac": {"type": "string", "example": "02:00:00:00:01:01"},
            "ips": {"type": "array", "items": {"type": "string"}},
            "host": {"type": "string", "description": "the host it sits behind"},
            "port": {"type": "string", "nullable": True,
                     "description": "its br0 port, when the host records attached-mac on the interface"},
            "vlan": {**VLAN, "minimum": 0, "description": "its br0 VLAN on that host (0: behind an external VTEP)"},
            "last_seen": {"type": "number", "description": "Unix time of its last packet seen by the controller"},
            "idle_s": {"type": "number", "minimum": 0, "description": "seconds since last_seen"},
            "external": {"type": "object", "required": ["vtep", "peer"],
                         "description": "only for an endpoint a BGP EVPN peer advertised (docs/operator/evpn.md)",
                         "properties": {"vtep": {"type": "string", "description": "the VTEP's underlay IP"},
                                        "peer": {"type": "string", "description": "the BGP peer it came from"}}},
        },
    },
    "HostTenant": {
        "type": "object", "required": ["name", "vni", "vlan", "members", "endpoints", "learning_capped"],
        "properties": {"name": {"type": "string"}, "vni": {"type": "integer"}, "vlan": VLAN,
                       "members": {"type": "boolean",
                                   "description": "the host has endpoints of it or br0 ports in its VLAN: "
                                                  "it holds the tenant's flows"},
                       "endpoints": {"type": "integer", "minimum": 0,
                                     "description": "endpoints of the tenant learned behind this host"},
                       "learning_capped": {"type": "boolean",
                                           "description": "max_endpoints reached here: nothing more is learned"}},
    },
    "Tunnel": {
        "type": "object", "required": ["name", "type", "remote_ip", "ofport", "managed", "peer"],
        "properties": {
            "name": {"type": "string"}, "type": {"type": "string", "enum": list(tunnels.NAMES)},
            "remote_ip": {"type": "string"}, "ofport": {"type": "integer", "nullable": True},
            "managed": {"type": "boolean", "description": "created by the controller (else adopted)"},
            "peer": {"type": "string", "nullable": True, "description": "the host at remote_ip"},
        },
    },
    "Host": {
        "type": "object",
        "required": ["id", "overlay_ip", "datapath_id", "connected", "tunnels", "tenants", "joined", "reason",
                     "admitted", "admission", "refused_claims"],
        "properties": {
            "id": {"type": "string", "nullable": True,
                   "description": "its OVSDB system-id (null: it has none, see peer and reason)"},
            "peer": {"type": "string", "nullable": True,
                     "description": "its OVSDB connection's address (ip:port), when it has one"},
            "joined": {"type": "boolean", "description": "false: it cannot join the overlay, see reason"},
            "reason": {"type": "string", "nullable": True, "description": "what keeps it from joining"},
            "admitted": {"type": "boolean",
                         "description": "false: it waits for admission (or was revoked) and is given nothing: "
                                        "no tunnel, no flow, no flood copy (docs/operator/security.md)"},
            "admission": {"type": "string", "nullable": True,
                          "description": "admitted: by whom (operator, config, certificate, open); else why not"},
            "waiting_since": {"type": "number", "description": "only while not admitted: since when it waits"},
            "refused_claims": {"type": "array", "items": ref("RefusedClaim"),
                               "description": "connections refused for claiming this host's system-id or its "
                                              "br1's datapath ID, the latest of each kind"},
            "overlay_ip": {"type": "string", "nullable": True},
            "datapath_id": {"type": "string", "nullable": True, "description": "br1's, 16 hex digits"},
            "connected": {"type": "object", "required": ["ovsdb", "openflow"],
                          "properties": {"ovsdb": {"type": "boolean"}, "openflow": {"type": "boolean"}}},
            "tunnels": {"type": "array", "items": ref("Tunnel")},
            "tenants": {"type": "array", "items": ref("HostTenant")},
        },
    },
    "RefusedClaim": {
        "type": "object", "required": ["peer", "channel", "reason", "why", "first", "at", "count"],
        "properties": {
            "peer": {"type": "string", "description": "the refused connection's address (ip:port), the latest"},
            "channel": {"type": "string", "enum": ["ovsdb", "openflow"]},
            "reason": {"type": "string", "enum": ["in_use", "address", "no_certificate", "wrong_certificate",
                                                  "datapath_taken"]},
            "why": {"type": "string"},
            "first": {"type": "number"}, "at": {"type": "number", "description": "the latest, Unix time"},
            "count": {"type": "integer", "minimum": 1}}},
    "Admission": {
        "type": "object", "required": ["id", "admitted", "by", "reason", "mode"],
        "properties": {
            "id": {"type": "string"}, "admitted": {"type": "boolean"},
            "by": {"type": "string", "nullable": True, "enum": ["operator", "config", "certificate", "open", None],
                   "description": "who admitted it: an operator (this API), [overlay] admitted_hosts, its "
                                  "certificate (admission = certificate) or admission = open"},
            "reason": {"type": "string", "nullable": True, "description": "why it is not admitted"},
            "mode": {"type": "string", "enum": ["certificate", "approve", "open"]}}},
    "AdmissionChange": _worded(host_rules.ADMISSION, {"admitted": {"description": "true: admit; false: revoke"}}),
    "PortRule": {
        "type": "object", "required": ["port", "macs", "ips"],
        "description": "a br0 port's allowed sources (as Neutron's allowed-address pairs): frames from other "
                       "MACs, and ARP/IP/ND from its MACs with other IPs, are dropped in br1",
        "properties": {"port": {"type": "string", "description": "the br0 port's name, as its OVSDB says"},
                       "macs": {"type": "array", "items": {"type": "string"}},
                       "ips": {"type": "array", "items": {"type": "string"}}}},
    "PortRuleChange": _worded(host_rules.PORT_RULE, {
        "macs": {"minItems": 1, "maxItems": host_rules.MAX_MACS, "example": ["02:00:00:00:01:01"],
                 "description": "unicast MACs the port may send from"},
        "ips": {"maxItems": host_rules.MAX_IPS, "example": ["192.168.1.1"],
                "description": "IPv4/IPv6 addresses those MACs may use; none: any"}}),
    "HostVlan": {
        "type": "object", "required": ["vlan", "tenant", "vni", "members"],
        "properties": {"vlan": VLAN, "tenant": {"type": "string"}, "vni": {"type": "integer"},
                       "members": {"type": "boolean"}},
    },
    "Health": {
        "type": "object", "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}, "reason": {"type": "string"}, "version": {"type": "string"},
                       "tenants": {"type": "integer"}, "hosts": {"type": "integer"},
                       "openflow_connections": {"type": "integer"}},
    },
    "Role": {
        "type": "object", "required": ["ha", "instance", "role", "leader", "generation", "switches"],
        "description": "this instance's part among several (issue 13): the leader is OpenFlow MASTER on every "
                       "switch and the only one that programs; the others are SLAVE",
        "properties": {
            "ha": {"type": "boolean", "description": "false: one instance alone ([overlay] store = sqlite)"},
            "instance": {"type": "string"},
            "role": {"type": "string", "enum": ["leader", "follower"]},
            "leader": {"type": "string", "nullable": True, "description": "the leader's instance name, when known"},
            "generation": {"type": "integer", "minimum": 0,
                           "description": "the newest leader generation ID seen (the election key's etcd revision)"},
            "leader_since": {"type": "number", "nullable": True,
                             "description": "when this instance last became leader"},
            "election": {"type": "object"},
            "switches": {"type": "object", "description": "datapath ID -> the role asked and the role accepted",
                         "additionalProperties": {"type": "object"}}}},
    "Counters": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                 "description": "the core's event counters by name (packet_in, flow_mods, arp_proxied, ...)"},
    "TraceRequest": _worded(TRACE_REQUEST, {
        "tenant": {"example": "blue"},
        "src": {"example": "02:00:00:00:01:01",
                "description": "the source VM: its MAC or one of its IPs (a learned endpoint)"},
        "dst": {"example": "02:00:00:00:01:02",
                "description": "a MAC (ff:ff:ff:ff:ff:ff: a broadcast) or an IP; with arp, the IPv4 asked for"},
        "arp": {"default": False, "description": "trace the broadcast ARP request for dst instead of a unicast frame"},
    }),
    "TraceStep": {
        "type": "object", "required": ["depth", "kind"],
        "description": "a flow hit (table, priority, match, actions), a table miss, an output (port, where "
                       "it leads, the packet as sent), a copy to the controller (meter) or a group",
        "properties": {"depth": {"type": "integer"},
                       "kind": {"type": "string", "enum": ["flow", "miss", "output", "controller", "group"]}},
    },
    "TraceHop": {
        "type": "object", "required": ["host", "from", "packet", "steps"],
        "properties": {"host": {"type": "string", "nullable": True}, "from": {"type": "object"},
                       "packet": {"type": "object"}, "steps": {"type": "array", "items": ref("TraceStep")},
                       "note": {"type": "string"}},
    },
    "Trace": {
        "type": "object", "required": ["tenant", "src", "dst", "kind", "packet", "hops", "summary"],
        "properties": {
            "tenant": {"type": "object"}, "src": {"type": "object"},
            "dst": {"type": "object", "nullable": True, "description": "the destination endpoint, if learned"},
            "kind": {"type": "string", "enum": ["unicast", "broadcast", "arp"]},
            "packet": {"type": "object", "description": "the frame as br1 receives it from br0"},
            "hops": {"type": "array", "items": ref("TraceHop"),
                     "description": "the source host, then each host a tunnel copy reaches"},
            "summary": {"type": "object", "required": ["tunnels", "delivered", "answered_in_switch",
                                                       "to_controller", "verdict"],
                        "properties": {"verdict": {"type": "string"}}},
        },
    },
}

TUNNEL_STATE = {"type": "string", "enum": list(STATES),
                "description": "made by the controller, made by hand, or none usable"}
SCHEMAS["Topology"] = {  # the web view's one read (controller/northbound/web.py)
    "type": "object", "required": ["tunnel_type", "hosts", "tenants"],
    "description": "what the web view draws, in one read: per host, not per pair of hosts",
    "properties": {
        "tunnel_type": {"type": "string"},
        "hosts": {"type": "array", "items": {
            "type": "object", "required": ["id", "overlay_ip", "datapath_id", "connected", "joined", "tunnels"],
            "properties": {
                **{k: v for k, v in SCHEMAS["Host"]["properties"].items() if k not in ("tunnels", "tenants", "reason")},
                "tunnels": {"type": "object", "nullable": True, "required": ["peers", *STATES],
                            "description": "its tunnels toward the other hosts, counted by state "
                                           "(GET /v1/topology/hosts/{host}: each one)",
                            "properties": {"peers": {"type": "integer", "minimum": 0},
                                           **{st: {"type": "integer", "minimum": 0} for st in STATES}}}}}},
        "tenants": {"type": "array", "items": {
            "type": "object", "required": ["name", "vni", "hosts"], "properties": {
                "name": {"type": "string"}, "vni": {"type": "integer"},
                "hosts": {"type": "array", "items": {"type": "string"}, "nullable": True,
                          "description": "where it is placed; null = every host"},
            }}},
    },
}
SCHEMAS["HostTunnels"] = {
    "type": "object", "required": ["host", "tunnels"],
    "properties": {"host": {"type": "string"}, "tunnels": {
        "type": "array", "description": "one per other host with an overlay IP, by id",
        "items": {"type": "object", "required": ["peer", "port", "state"], "properties": {
            "peer": {"type": "string"}, "state": TUNNEL_STATE,
            "port": {"type": "string", "nullable": True, "description": "the port on the host"}}}}},
}
TENANT_SPEC = _worded(rules.TENANT_REPLACE, TENANT_WORDS,
                      description="a tenant, by its name (the key): as the tenant resource; 'name', if given, "
                                  "must be the key")
SCHEMAS["OverlayDocument"] = {
    "type": "object", "additionalProperties": False,
    "description": "the overlay's declared state (docs/user/gitops.md): tenants by name, the operator's "
                   "admissions and the br0 ports' rules. A host section left out (or null) is not the "
                   "document's: an apply leaves those records alone, with prune too",
    "properties": {
        "version": {"type": "integer", "enum": [overlay_doc.VERSION]},
        "tenants": {"type": "object", "nullable": True, "additionalProperties": TENANT_SPEC,
                    "description": "tenant name (as the tenant's 'name') -> the tenant",
                    "example": {"blue": {"vni": 5001, "vlan": 10}, "red": {"vni": 5002, "vlan": 20, "hosts": ["h1"]}}},
        "hosts": {"type": "object", "nullable": True, "additionalProperties": ref("AdmissionChange"),
                  "description": "host id -> the operator's decision (as PUT /v1/hosts/{id}/admission)",
                  "example": {"h1": {"admitted": True}, "h9": {"admitted": False}}},
        "ports": {"type": "object", "nullable": True,
                  "additionalProperties": {"type": "object", "additionalProperties": ref("PortRuleChange")},
                  "description": "host id -> br0 port name -> its rule (as PUT /v1/hosts/{id}/ports/{port})",
                  "example": {"h1": {"vm1": {"macs": ["02:00:00:00:01:01"], "ips": ["192.168.1.1"]}}}},
    },
}
HOST_RULE = {"type": "object", "required": ["host", "port", "macs", "ips"], "properties": {
    "host": {"type": "string"}, "port": {"type": "string"},
    "macs": {"type": "array", "items": {"type": "string"}}, "ips": {"type": "array", "items": {"type": "string"}}}}
HOST_DECISION = {"type": "object", "required": ["host", "admitted"],
                 "properties": {"host": {"type": "string"}, "admitted": {"type": "boolean"}}}


def _section_plan(item: dict, change: dict, what: str) -> dict:
    return {"type": "object", "required": ["create", "change", "delete", "unchanged", "kept"],
            "description": f"what the apply does to the {what} (all empty: the document has no such section)",
            "properties": {"create": {"type": "array", "items": item},
                           "change": {"type": "array", "items": change},
                           "delete": {"type": "array", "items": item, "description": "only with prune"},
                           "unchanged": {"type": "integer", "minimum": 0},
                           "kept": {"type": "array", "items": {"type": "string"},
                                    "description": "not in the section, left alone (without prune)"}}}

SCHEMAS["ApplyResult"] = {
    "type": "object",
    "required": ["revision", "applied", "dry_run", "prune", "changes", "create", "change", "delete", "unchanged",
                 "kept", "hosts", "ports"],
    "properties": {
        "revision": {"type": "integer", "minimum": 0,
                     "description": "the store's revision that holds the result (GET /v1/status?revision=)"},
        "applied": {"type": "boolean", "description": "something was written (false: nothing to do, or a dry run)"},
        "dry_run": {"type": "boolean"}, "prune": {"type": "boolean"},
        "changes": {"type": "boolean", "description": "the document differs from the tenants or host records"},
        "create": {"type": "array", "items": ref("Tenant")},
        "change": {"type": "array", "items": {
            "type": "object", "required": ["name", "from", "to", "fields"],
            "properties": {"name": {"type": "string"}, "from": ref("Tenant"), "to": ref("Tenant"),
                           "fields": {"type": "array", "items": {"type": "string"}}}}},
        "delete": {"type": "array", "items": ref("Tenant"), "description": "only with prune"},
        "unchanged": {"type": "integer", "minimum": 0},
        "kept": {"type": "array", "items": {"type": "string"},
                 "description": "tenants not in the document, left alone (without prune)"},
        "hosts": _section_plan(HOST_DECISION, {
            "type": "object", "required": ["host", "from", "to"],
            "properties": {"host": {"type": "string"}, "from": {"type": "boolean"}, "to": {"type": "boolean"}}},
            "operator's admissions"),
        "ports": _section_plan(HOST_RULE, {
            "type": "object", "required": ["host", "port", "from", "to"],
            "properties": {"host": {"type": "string"}, "port": {"type": "string"}, "from": HOST_RULE, "to": HOST_RULE}},
            "port rules ('kept': host/port)"),
    },
}
SCHEMAS["Status"] = {
    "type": "object", "required": ["revision", "asked", "live", "reason", "hosts", "holding", "lagging"],
    "properties": {
        "revision": {"type": "integer", "description": "the revision of the tenants this controller holds"},
        "asked": {"type": "integer", "description": "the revision asked about (default: the current one)"},
        "live": {"type": "boolean", "description": "every host's switch holds it, barrier-confirmed"},
        "reason": {"type": "string", "nullable": True, "description": "why not, in a few words"},
        "hosts": {"type": "integer", "minimum": 0}, "holding": {"type": "integer", "minimum": 0},
        "lagging": {"type": "array", "items": {
            "type": "object", "required": ["host", "revision", "reason"],
            "properties": {"host": {"type": "string"},
                           "revision": {"type": "integer", "nullable": True,
                                        "description": "the revision its switch holds (null: none known)"},
                           "reason": {"type": "string"}}}},
    },
}
SCHEMAS["Event"] = {
    "type": "object", "required": ["id", "kind", "at"],
    "description": "one event (docs/reference/events.md); the other fields depend on the kind",
    "properties": {"id": {"type": "string", "example": "3f2a91c0-42"},
                   "kind": {"type": "string", "enum": list(ev.KINDS)},
                   "at": {"type": "number", "description": "Unix time it was published"}},
}
SCHEMAS["Events"] = {
    "type": "object", "required": ["events", "last_id", "more", "reset"],
    "properties": {"events": {"type": "array", "items": ref("Event"),
                              "maxItems": events.JSON_PAGE},
                   "last_id": {"type": "string", "description": "resume from here (since=, Last-Event-ID)"},
                   "more": {"type": "boolean", "description": "more are held: ask again with since=last_id"},
                   "reset": {"type": "string", "nullable": True,
                             "description": "why events are missing before these (read the state again)"}},
}
SCHEMAS["Flood"] = {
    "type": "object", "required": ["name", "vni", "members", "flood"], "properties": {
        "name": {"type": "string"}, "vni": {"type": "integer"},
        "members": {"type": "array", "items": {"type": "string"}, "description": "hosts with endpoints of it"},
        "flood": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                  "description": "host it is placed on -> the peers its flood group there copies to"}},
}

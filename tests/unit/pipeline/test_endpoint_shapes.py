"""An endpoint's entries on its member hosts are made once as shapes (flows.VidShape) and put at each
host's VLAN tag: they must be the flows made directly for that tag, with the same cookie digest,
the same 64-bit digest and the same bytes on the wire as the generic encoder writes."""

from __future__ import annotations

import dataclasses

import pytest

from controller.core.index import Index
from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import Endpoint, HostView, Tenant, TunnelPort
from controller.pipeline import desired
from controller.pipeline.learning_modes import MODES
from controller.shell.config import defaults
from controller.southbound import encoder

HOSTS = range(1, 6)
IPS = [set(), {"10.1.0.7"}, {"fd00::7"}, {"10.1.0.8", "10.81.91.1", "fd00::8191"}]


def _view(i: int, ports: str) -> HostView:
    if ports == "flow":
        tunnels = (TunnelPort("vxlan_sys_flow", "vxlan", "flow", 2, True, f"u{i}"),)
    else:
        tunnels = tuple(TunnelPort(f"vx{j}", "vxlan", f"10.0.0.{j}", 10 + j, True, f"u{i}-{j}")
                        for j in HOSTS if j != i)
    return HostView(f"h{i}", f"10.0.0.{i}", i, f"br{i}", 1, tunnels, frozenset({100 + i}), ())


def _plain(fl: f.Flow) -> f.Flow:
    """The same flow made the generic way (no shape): its digests and bytes from scratch."""
    return f.Flow(**{fd.name: getattr(fl, fd.name) for fd in dataclasses.fields(fl) if fd.init})


@pytest.mark.parametrize("ports", ["flow", "mesh"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_entry_made_from_a_shape_is_the_flow_made_for_its_tag_digests_and_bytes_included(ports, mode):
    s = defaults(tunnel_type="vxlan", tunnel_ports=ports, mac_learning=mode)
    # A different VLAN on every host; 8191 (SHAPE_VID's digits) also inside an IP and a tag.
    tenant = Tenant("t", 1000, 100, frozenset(f"h{i}" for i in HOSTS),
                    tuple((f"h{i}", v) for i, v in zip(HOSTS, (100, 107, 819, 4094, 191), strict=True)))
    ix = Index([tenant])
    for i in HOSTS:
        ix.put_host(_view(i, ports))
    shaped = 0
    for n, ips in enumerate(IPS):
        ep = Endpoint(1000, f"02:00:00:00:00:{n:02x}", "h1", 100, 0.0, set(ips))
        for i in HOSTS:
            host = ix.hosts[f"h{i}"]
            for capped in (False, True):
                got = desired.endpoint_flows(s, host, tenant, ep, ix.hosts, capped, shared=True)
                assert got, "every member host holds entries for the endpoint"
                for fl in got:
                    plain = _plain(fl)
                    assert fl == plain and fl.key == plain.key
                    assert (fl.wire_cookie, fl.digest) == (plain.wire_cookie, plain.digest)
                    assert encoder.flow_mod(fl) == encoder.flow_mod(plain)
                    shaped += fl._shape is not None
    assert shaped, "entries on the other hosts come from shapes"


def test_a_flow_without_a_tag_in_its_match_or_with_the_tag_s_digits_twice_is_kept_as_it_is():
    untagged = f.Flow(t.UNICAST, t.PRIO_MISS, f.match(), goto=t.FLOOD)
    assert f.VidShape.of(untagged) is untagged
    twice = f.Flow(t.UNICAST, t.PRIO_ENTRY, f.match(vlan_vid=f.SHAPE_VID), (f.SetField("tunnel_id", f.SHAPE_VID),))
    assert f.VidShape.of(twice) is twice
    assert f.shaped([untagged], 4100) == {untagged}

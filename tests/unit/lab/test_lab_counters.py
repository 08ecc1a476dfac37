"""The lab's underlay counters (lab.overlay.underlay_rx): a port without counters is an error, never 0."""

import pytest

from lab.overlay import underlay_rx


class FakeHost:
    def __init__(self, name: str, tunnels: list[str], stats: dict[str, dict[str, int]]) -> None:
        self.name, self._tunnels, self._stats = name, tunnels, stats

    def tunnel_ports(self) -> dict[str, dict]:
        return {name: {} for name in self._tunnels}

    def port_stats(self) -> dict[str, dict[str, int]]:
        return self._stats


def test_rx_is_summed_over_the_tunnel_ports_only():
    h = FakeHost("h1", ["vx-a", "vx-b"], {"vx-a": {"rx_packets": 3}, "vx-b": {"rx_packets": 4},
                                          "patch-int": {"rx_packets": 100}})
    assert underlay_rx([h]) == {"h1": 7}


def test_a_tunnel_port_without_counters_raises_instead_of_reading_0():
    renamed = FakeHost("h1", ["vx-a", "vx-new"], {"vx-a": {"rx_packets": 3}, "vx-old": {"rx_packets": 5}})
    with pytest.raises(LookupError, match="vx-new"):
        underlay_rx([renamed])

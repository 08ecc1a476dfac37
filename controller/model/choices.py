"""Settings chosen by name from a fixed set (tunnel kinds, tunnel_ports, mac_learning)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def by_name(table: Mapping[str, T], name: str, what: str, error: type[ValueError] = ValueError) -> T:
    """table[name]; an unknown name is an error that lists the known ones, never a fallback."""
    try:
        return table[name]
    except KeyError:
        raise error(f"unknown {what} {name!r}: one of {', '.join(table)}") from None

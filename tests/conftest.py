"""Fixtures shared by every test directory: a real etcd on loopback (lab/etcd.py).

etcd on loopback needs neither root nor the lab lock; a single member starts in well under a
second, a three-member cluster in a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from lab.etcd import ETCD, EtcdCluster


def _need_etcd() -> None:
    if not os.access(ETCD, os.X_OK):
        pytest.fail(f"{ETCD} is missing: ./setup.sh installs Debian's etcd-server")


@pytest.fixture(scope="session")
def etcd1() -> Iterator[EtcdCluster]:
    """One etcd member for the whole session: tests keep apart by using their own key prefix."""
    _need_etcd()
    with EtcdCluster(1) as cluster:
        yield cluster


@pytest.fixture
def make_etcd() -> Iterator[Callable[..., EtcdCluster]]:
    """make_etcd(size=3) -> a started, healthy EtcdCluster; all of them are removed after the test."""
    _need_etcd()
    made: list[EtcdCluster] = []

    def make(size: int = 3, **kwargs: object) -> EtcdCluster:
        cluster = EtcdCluster(size, **kwargs)  # type: ignore[arg-type]
        made.append(cluster)
        return cluster.start_all()

    yield make
    for cluster in made:
        cluster.close()

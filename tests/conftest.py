"""Fixtures shared by every test directory: a real etcd on loopback (lab/etcd.py), and two PKIs
made with ovs-pki (lab/pki.py; about a second each), the second a CA the first does not trust.

etcd on loopback needs neither root nor the lab lock; a single member starts in well under a
second, a three-member cluster in a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from lab.etcd import ETCD, EtcdCluster
from lab.pki import Pki


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


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another operator's CA: its certificates must be refused by a controller that trusts `pki`."""
    return Pki(tmp_path_factory.mktemp("foreign-pki"))

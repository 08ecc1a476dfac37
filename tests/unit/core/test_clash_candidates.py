"""Creating a tenant checks only the tenants that could clash with it (index.py), with the same verdict."""

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.index import Index
from controller.model.state import Tenant
from controller.model.tenant_rules import Conflict, check_conflicts

HOSTS = ["h1", "h2", "h3", "h4"]
tenants = st.builds(
    lambda name, vni, vlan, hosts, overrides: Tenant(
        name, vni, vlan, None if hosts is None else frozenset(hosts), tuple(sorted(overrides.items()))),
    st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.integers(1, 4), st.integers(10, 13),
    st.none() | st.sets(st.sampled_from(HOSTS), min_size=1),
    st.dictionaries(st.sampled_from(HOSTS), st.integers(10, 13), max_size=2))


def verdict(tenant: Tenant, others: list[Tenant]) -> str | None:
    try:
        check_conflicts(tenant, others)
    except Conflict as e:
        return str(e)
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(tenants, max_size=8), tenants)
def test_the_candidates_give_the_verdict_of_every_tenant(existing, new):
    ix = Index()
    for tn in existing:  # only what the API would have let in
        if tn.name not in ix.tenants and verdict(tn, list(ix.tenants.values())) is None:
            ix.put_tenant(tn)
    assert verdict(new, ix.clash_candidates(new)) == verdict(new, list(ix.tenants.values()))

"""The etcd store against a real etcd on loopback (lab/etcd.py): several "instances" (the real
REST API, tenant service, core and EtcdStore each, no switches) share one etcd.

Each instance runs its watch in a thread and serialises it with its requests through one lock,
as the app's event loop does. An instance made with watch=False never hears of the others'
writes: its view is stale on purpose, so its writes must lose their compare-and-swap.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from webob import Request

from controller.core import admission
from controller.core.store import Behind, StoreError
from controller.ha import etcd
from controller.ha.etcd_store import EtcdStore
from controller.model.state import HostView, Tenant
from controller.northbound.rest import Api
from controller.shell import config
from lab.procs import wait_for
from tests.unit.api_backend import Backend, call
from tests.unit.confs import conf_from

pytestmark = pytest.mark.etcd  # a real etcd on loopback (./setup.sh installs it)


class Locked(Backend):
    def __init__(self, store: EtcdStore) -> None:
        super().__init__("", store=store)
        self.lock = threading.RLock()

    def call(self, fn, timeout=None):
        with self.lock:
            return fn()


class Instance:
    def __init__(self, endpoints: list[str], prefix: str, watch: bool = True, timeout: float = 1.0,
                 retry_for: float = 5.0) -> None:
        self.store = EtcdStore(etcd.connect(endpoints, timeout, retry_for), prefix)
        self.b = Locked(self.store)
        self.api = Api(self.b)
        if watch:
            threading.Thread(target=self.store.watch, args=(self.b,), daemon=True).start()

    def req(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        return call(self.api, method, path, body, headers=headers)

    def tenant(self, name: str) -> dict | None:
        status, doc = self.req("GET", f"/v1/tenants/{name}")
        return doc if status == 200 else None

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def instances(etcd1):
    """instances(n, watch=True, endpoints=None) -> n instances on one fresh prefix."""
    made: list[Instance] = []
    prefix = f"/test-{uuid.uuid4().hex[:8]}/"

    def make(n: int = 2, watch: bool = True, endpoints: list[str] | None = None) -> list[Instance]:
        new = [Instance(endpoints or etcd1.endpoints, prefix, watch) for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for inst in made:
        inst.close()


BLUE = {"name": "blue", "vni": 5001, "vlan": 10}


def test_a_write_on_one_instance_reaches_the_others_core(instances) -> None:
    a, b = instances(2)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    wait_for(lambda: b.tenant("blue") == {**BLUE, "hosts": None, "vlans": {}}, 10, message="b sees blue")
    assert b.b.core.tenants["blue"] == Tenant("blue", 5001, 10)
    assert a.req("PATCH", "/v1/tenants/blue", {"vlan": 11})[0] == 200
    wait_for(lambda: b.b.core.tenants["blue"].vlan == 11, 10, message="b sees the patch")
    assert a.req("DELETE", "/v1/tenants/blue")[0] == 204
    wait_for(lambda: "blue" not in b.b.core.tenants, 10, message="b sees the delete")
    # The instance that wrote applied its own write once, not again when its watch saw it.
    assert a.b.core.tenants == {}


def test_a_stale_create_of_a_taken_name_or_vni_is_409(instances) -> None:
    a, = instances(1)
    stale, = instances(1, watch=False)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    status, doc = stale.req("POST", "/v1/tenants", BLUE)
    assert status == 409 and "already exists" in doc["error"]
    status, doc = stale.req("POST", "/v1/tenants", {"name": "green", "vni": 5001, "vlan": 30})
    assert status == 409 and "VNI 5001" in doc["error"]
    status, doc = stale.req("POST", "/v1/tenants", {"name": "green", "vni": 5003, "vlan": 10})
    assert status == 409 and "VLAN 10" in doc["error"]
    # Refusing, it caught up: blue is in its core now, and only blue is in etcd.
    assert stale.b.core.tenants == {"blue": Tenant("blue", 5001, 10)}
    assert [t.name for t in a.store.tenants()] == ["blue"]


def test_if_match_of_a_version_changed_elsewhere_is_412(instances) -> None:
    a, = instances(1)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    stale, = instances(1, watch=False)  # it loads blue at VLAN 10, then hears nothing more
    tag = _etag(stale, "blue")
    assert a.req("PATCH", "/v1/tenants/blue", {"vlan": 12})[0] == 200
    status, doc = stale.req("PUT", "/v1/tenants/blue", {"vni": 5001, "vlan": 13}, **{"If-Match": tag})
    assert status == 412, doc
    assert [t.vlan for t in a.store.tenants()] == [12]  # unchanged in etcd
    assert stale.b.core.tenants["blue"].vlan == 12  # and the refusal brought it up to date
    # Decided again without If-Match: the replace wins on the current version.
    assert stale.req("PUT", "/v1/tenants/blue", {"vni": 5001, "vlan": 13})[0] == 200
    assert [t.vlan for t in a.store.tenants()] == [13]


def _etag(inst: Instance, name: str) -> str:
    return _tagged(inst, name)[1]


def _tagged(inst: Instance, name: str) -> tuple[dict, str]:
    """The tenant and its ETag, from one GET."""
    resp = Request.blank(f"/v1/tenants/{name}").get_response(inst.api)
    return json.loads(resp.body), resp.headers["ETag"]


def test_two_writers_racing_on_one_version_only_one_wins(instances) -> None:
    a, b = instances(2, watch=False)
    a.store.put_tenant(Tenant("blue", 5001, 10))
    with pytest.raises(Behind) as lost:
        b.store.put_tenant(Tenant("blue", 5001, 20))  # b's view is from before a's write
    assert lost.value.listing == [Tenant("blue", 5001, 10)]
    assert b.store.tenants() == [Tenant("blue", 5001, 10)]
    b.store.put_tenant(Tenant("blue", 5001, 20))  # now current: it commits
    with pytest.raises(Behind):
        a.store.delete_tenant("blue")


def test_a_view_newer_than_the_refusal_is_not_rolled_back(instances) -> None:
    """The watch may apply later writes while a refused write's answer travels: the older listing
    in that answer must not replace them (Behind without a listing: decide again on the view)."""
    a, = instances(1, watch=False)
    assert a.store.put_tenant(Tenant("blue", 5001, 10)) is True  # new to the view: apply it
    ahead = a.store.version + 1000
    a.store.version = ahead  # as if its watch had applied writes up to there
    with pytest.raises(Behind) as refused:
        a.store.put_tenant(Tenant("blue", 5001, 11))
    assert refused.value.listing is None and a.store.version == ahead


def test_the_view_is_at_a_watched_revision_before_its_change_goes_out(instances) -> None:
    """Sending a watched change may yield to a request: by then the version must be the change's,
    so that a refusal answered from before it cannot roll the core back (store.Behind(None))."""
    a, b = instances(2, watch=False)
    assert a.store.put_tenant(Tenant("blue", 5001, 10)) is True
    b.store.tenants()
    seen: list[int] = []
    b.b.apply = lambda ops: seen.append(b.store.version)  # where the real apply() may yield
    assert a.store.put_tenant(Tenant("blue", 5001, 11)) is True
    revision, events = next(iter(b.store.etcd.watch_prefix(b.store.root, b.store.version + 1)))
    b.store._apply(b.b, revision, events)
    assert b.b.core.tenants["blue"].vlan == 11 and seen == [revision] and b.store.version == revision


def run_all(worker: Callable[..., None], args: list[tuple]) -> None:
    """worker(*a) for each a, at once, in threads; a worker's exception fails the caller."""
    with ThreadPoolExecutor(len(args)) as pool:
        for future in [pool.submit(worker, *a) for a in args]:
            future.result(timeout=60)


def test_concurrent_read_modify_write_loses_no_update(instances) -> None:
    """Two instances each add 1 to blue's VLAN 15 times with GET + If-Match, retrying on 412:
    the VLAN ends 30 higher, so no increment was lost."""
    a, b = instances(2)
    assert a.req("POST", "/v1/tenants", {**BLUE, "vlan": 100})[0] == 201
    wait_for(lambda: b.tenant("blue") is not None, 10, message="b sees blue")
    refused: list[int] = []

    def bump(inst: Instance, times: int) -> None:
        done = 0
        while done < times:
            doc, tag = _tagged(inst, "blue")  # one GET: two could straddle its watch's update
            status, _ = inst.req("PUT", "/v1/tenants/blue", {**doc, "vlan": doc["vlan"] + 1}, **{"If-Match": tag})
            if status == 200:
                done += 1
            else:
                assert status == 412, status
                refused.append(status)
                # the other's write made the tag stale: read again once this instance's watch has it
                wait_for(lambda had=doc["vlan"]: inst.tenant("blue")["vlan"] != had, 10, 0.005, "its watch moved on")

    run_all(bump, [(a, 15), (b, 15)])
    assert [t.vlan for t in a.store.tenants()] == [130]
    wait_for(lambda: a.b.core.tenants["blue"].vlan == b.b.core.tenants["blue"].vlan == 130, 10,
             message="both cores at VLAN 130")
    print(f"30 increments from 2 instances: {len(refused)} refused with 412 and retried")


def test_merge_patches_without_if_match_are_all_kept(instances) -> None:
    a, b = instances(2)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    wait_for(lambda: b.tenant("blue") is not None, 10, message="b sees blue")

    def patch(inst: Instance, host: str) -> None:
        for i in range(10):
            assert inst.req("PATCH", "/v1/tenants/blue", {"vlans": {host: 200 + i}})[0] == 200

    run_all(patch, [(a, "ha"), (b, "hb")])
    assert a.store.tenants()[0].vlans == (("ha", 209), ("hb", 209))


def test_a_watch_behind_a_compaction_relists_and_catches_up(instances, etcd1, caplog) -> None:
    """An instance whose watch was away while etcd compacted past it re-lists everything."""
    a, = instances(1)
    late, = instances(1, watch=False)  # loads the empty prefix, then hears nothing
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    assert a.req("POST", "/v1/tenants", {"name": "red", "vni": 5002, "vlan": 20})[0] == 201
    assert a.req("DELETE", "/v1/tenants/blue")[0] == 204
    client = etcd.connect(etcd1.endpoints)
    revision = int(client.status()["header"]["revision"])
    client.post("kv/compaction", {"revision": revision, "physical": True})
    threading.Thread(target=late.store.watch, args=(late.b,), daemon=True).start()
    wait_for(lambda: sorted(late.b.core.tenants) == ["red"], 10, message="the late instance re-listed")
    assert "re-listing the tenants" in caplog.text  # it could not have replayed the compacted events


def test_an_invalid_value_in_etcd_is_ignored_and_the_rest_loads(instances, etcd1) -> None:
    a, = instances(1)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    client = etcd.connect(etcd1.endpoints)
    client.txn([], [etcd.put(a.store.by_name + "bad", b"{not json")])
    assert [t.name for t in a.store.tenants()] == ["blue"]


def test_the_watch_follows_across_a_member_kill_and_writes_fail_over(instances, make_etcd) -> None:
    cluster = make_etcd(3)
    a, b = instances(2, endpoints=cluster.endpoints)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    wait_for(lambda: b.tenant("blue") is not None, 10, message="b sees blue")
    cluster.kill(0)  # both talk to member 0 first: their watches and requests move on
    started = time.monotonic()
    status, doc = a.req("PATCH", "/v1/tenants/blue", {"vlan": 21})
    took = time.monotonic() - started
    assert status == 200, doc
    wait_for(lambda: b.b.core.tenants["blue"].vlan == 21, 15, message="b sees the patch after the kill")
    assert b.req("POST", "/v1/tenants", {"name": "red", "vni": 5002, "vlan": 20})[0] == 201
    wait_for(lambda: a.tenant("red") is not None, 15, message="a sees red")
    print(f"first write after killing member 0: {took:.2f} s")


def test_etcd_gone_writes_503_fast_reads_serve_and_it_all_resumes(instances, make_etcd) -> None:
    cluster = make_etcd(1)
    a, b = instances(2, endpoints=cluster.endpoints)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    wait_for(lambda: b.tenant("blue") is not None, 10, message="b sees blue")
    cluster.stop_all()
    before = dict(a.b.core.tenants), len(a.b.applied)
    started = time.monotonic()
    status, doc = a.req("POST", "/v1/tenants", {"name": "red", "vni": 5002, "vlan": 20})
    took = time.monotonic() - started
    assert status == 503 and "etcd" in doc["error"], doc
    assert took < 3.0
    assert a.req("PATCH", "/v1/tenants/blue", {"vlan": 11})[0] == 503
    assert a.req("DELETE", "/v1/tenants/blue")[0] == 503
    assert (dict(a.b.core.tenants), len(a.b.applied)) == before  # nothing changed here
    assert a.tenant("blue") == {**BLUE, "hosts": None, "vlans": {}}  # reads serve the last state
    assert a.req("GET", "/v1/health")[0] == 503
    cluster.start_all()
    wait_for(lambda: a.req("POST", "/v1/tenants", {"name": "red", "vni": 5002, "vlan": 20})[0] == 201, 15,
             interval=0.2, message="writes work again")
    wait_for(lambda: b.tenant("red") is not None, 15, message="b's watch resumed")
    assert a.req("GET", "/v1/health")[0] == 200
    print(f"write with etcd gone: 503 in {took:.3f} s")


def test_without_a_quorum_writes_503_after_retry_for_and_reads_serve(make_etcd) -> None:
    """Two of three members gone: the one left accepts connections but cannot commit; a write
    goes on asking for retry_for seconds, then answers 503, changing nothing."""
    cluster = make_etcd(3)
    a = Instance(cluster.endpoints, "/quorum/", watch=False, timeout=0.5, retry_for=1.5)
    try:
        assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
        cluster.kill(1)
        cluster.kill(2)
        started = time.monotonic()
        status, doc = a.req("PATCH", "/v1/tenants/blue", {"vlan": 11})
        took = time.monotonic() - started
        assert status == 503 and "no answer in time" in doc["error"], doc
        assert 1.5 <= took < 1.5 + 3 * 0.5 + 1.0, took  # retry_for, plus at most a round of timeouts
        assert a.tenant("blue")["vlan"] == 10 and a.b.core.tenants["blue"].vlan == 10
        print(f"write without a quorum: 503 in {took:.2f} s (retry_for 1.5 s, timeout 0.5 s)")
    finally:
        a.close()


def test_a_store_error_names_etcd_when_no_member_answers() -> None:
    dead = etcd.connect(["http://127.0.0.1:9"], timeout=0.5)
    with pytest.raises(StoreError, match="etcd"):
        EtcdStore(dead).tenants()


def test_config_picks_the_store_and_checks_endpoints(tmp_path, etcd1) -> None:
    conf = conf_from(tmp_path / "a.conf", f"[overlay]\nstore = etcd\n[etcd]\nendpoints = {etcd1.endpoints[0]}\n"
                                          "prefix = /cfg-test/\ntimeout = 0.5\n")
    store = config.open_store(conf)
    assert isinstance(store, EtcdStore) and store.root == "/cfg-test/tenants/"
    assert store.etcd.timeout == 0.5 and store.tenants() == []
    default = conf_from(tmp_path / "b.conf", f"[overlay]\ndb = {tmp_path / 'x.db'}\n")
    assert type(config.open_store(default)).__name__ == "Store"
    with pytest.raises(ValueError, match="not http"):
        etcd.parse_endpoints("127.0.0.1:2379")
    assert etcd.parse_endpoints(" http://a:1, http://b:2 ") == ["http://a:1", "http://b:2"]


def test_over_tls_etcd_takes_the_controllers_certificate_and_no_other(tmp_path, pki, foreign_pki) -> None:
    """etcd with --client-cert-auth: [tls]'s certificate gets in; none, or another CA's, does not."""
    from lab.etcd import EtcdCluster

    key, cert = pki.controller()
    with EtcdCluster(1, tls=pki) as cluster:
        assert cluster.endpoints[0].startswith("https://")
        conf = conf_from(tmp_path / "tls.conf", f"[overlay]\nstore = etcd\n[etcd]\nendpoints = {cluster.endpoints[0]}\n"
                                                f"retry_for = 0\n[tls]\nprivate_key = {key}\ncertificate = {cert}\n"
                                                f"ca_certificate = {pki.switch_ca}\n"
                                                f"[etcd]\nca_certificate = {pki.controller_ca}\n")
        store = config.open_store(conf)
        store.put_tenant(Tenant("blue", 5001, 10))
        assert [t.name for t in store.tenants()] == ["blue"]
        store.close()
        f_key, f_cert = foreign_pki.controller()
        for tls in (etcd.ClientTls(str(pki.controller_ca)),  # no client certificate
                    etcd.ClientTls(str(pki.controller_ca), str(f_cert), str(f_key)),  # another CA's
                    etcd.ClientTls(str(foreign_pki.controller_ca), str(cert), str(key))):  # etcd unverifiable
            with pytest.raises(StoreError, match="etcd"):
                EtcdStore(etcd.connect(cluster.endpoints, timeout=2.0, retry_for=0.0, tls=tls)).tenants()


def test_admissions_and_port_rules_reach_every_instance_and_a_fresh_one_reads_them(instances) -> None:
    a, b = instances(2)
    for inst in (a, b):
        inst.b.core.policy.mode = admission.APPROVE
        threading.Thread(target=inst.store.watch_hosts, args=(inst.b,), daemon=True).start()
    with b.b.lock:
        b.b.core.host_view(HostView("h7", "10.99.0.7", 7, "br", 1), 1.0)
    assert "h7" in b.b.core.read.waiting
    assert a.req("PUT", "/v1/hosts/h7/admission", {"admitted": True})[0] == 200
    wait_for(lambda: "h7" in b.b.core.read.hosts, 10, message="b admits h7")
    rule = {"macs": ["02:00:00:00:00:07"], "ips": ["10.0.0.7"]}
    assert a.req("PUT", "/v1/hosts/h7/ports/vm7", rule)[0] == 200
    wait_for(lambda: "vm7" in b.b.core.read.port_rules("h7"), 10, message="b has the rule")
    assert a.req("PUT", "/v1/hosts/h7/admission", {"admitted": False})[0] == 200
    wait_for(lambda: "h7" in b.b.core.read.waiting, 10, message="b revokes h7")
    assert a.req("DELETE", "/v1/hosts/h7/ports/vm7")[0] == 204
    wait_for(lambda: not b.b.core.read.port_rules("h7"), 10, message="b drops the rule")
    fresh, = instances(1, watch=False)
    assert fresh.store.host_records() == ({"h7": False}, [])


def test_an_apply_is_one_transaction_and_one_revision_seen_whole_by_the_others(instances):
    a, b = instances(2)
    assert a.req("POST", "/v1/tenants", BLUE)[0] == 201
    doc = {"tenants": {"blue": {"vni": 5001, "vlan": 11}, "red": {"vni": 5002, "vlan": 10}}}  # red takes blue's VLAN
    status, result = a.req("POST", "/v1/apply", doc)
    assert status == 200 and result["applied"] and len(result["create"]) == 1 and len(result["change"]) == 1
    assert result["revision"] == a.store.revision
    # the other instance applies the transaction at once (never red and blue on VLAN 10 together)
    wait_for(lambda: b.b.core.read.revision == result["revision"], 5, 0.02, "the other instance at the revision")
    assert b.tenant("blue")["vlan"] == 11 and b.tenant("red")["vlan"] == 10
    status, again = b.req("POST", "/v1/apply", doc)
    assert status == 200 and not again["applied"] and again["revision"] == result["revision"]


def test_an_apply_larger_than_one_etcd_transaction_is_refused_whole(instances):
    (a,) = instances(1)
    doc = {"tenants": {f"t{i}": {"vni": i + 1, "vlan": i + 1} for i in range(200)}}
    status, body = a.req("POST", "/v1/apply", doc)
    assert status == 413 and "max-txn-ops" in body["error"]
    assert a.req("GET", "/v1/tenants")[1] == [] and a.store.revision == 0


def test_an_apply_with_host_records_is_one_transaction_the_others_follow(instances):
    """Tenants, admissions and port rules of one apply: one etcd transaction (every key at its
    revision), seen by the other instances' watches as REST admissions are; prune removes them alike."""
    a, b = instances(2)
    for inst in (a, b):
        inst.b.core.policy.mode = admission.APPROVE
        threading.Thread(target=inst.store.watch_hosts, args=(inst.b,), daemon=True).start()
    with b.b.lock:
        b.b.core.host_view(HostView("h7", "10.99.0.7", 7, "br", 1), 1.0)
    doc = {"tenants": {"blue": {"vni": 5001, "vlan": 10}},
           "hosts": {"h7": {"admitted": True}, "h8": {"admitted": False}},
           "ports": {"h7": {"vm7": {"macs": ["02:00:00:00:00:07"], "ips": ["10.0.0.7"]}}}}
    status, result = a.req("POST", "/v1/apply", doc)
    assert status == 200 and result["applied"] and result["revision"] == a.store.revision
    kvs, _ = a.store.etcd.range_prefix(a.store.root.rsplit("tenants/", 1)[0])
    assert {kv.mod_revision for kv in kvs} == {result["revision"]} and len(kvs) == 5  # + the version key
    wait_for(lambda: "h7" in b.b.core.read.hosts and "vm7" in b.b.core.read.port_rules("h7"), 10,
             message="b admits h7 with its rule")
    wait_for(lambda: b.b.core.read.revision == result["revision"] and "blue" in b.b.core.tenants, 10,
             message="b at the revision")
    assert b.b.core.read.admission("h8")[0] is False
    status, again = b.req("POST", "/v1/apply", doc)
    assert status == 200 and not again["changes"] and again["revision"] == result["revision"]
    status, pruned = a.req("POST", "/v1/apply?prune=true", {**doc, "hosts": {"h7": {"admitted": True}}, "ports": {}})
    assert status == 200 and pruned["revision"] > result["revision"]
    wait_for(lambda: "h8" not in b.b.core.policy.decisions and not b.b.core.read.port_rules("h7"), 10,
             message="b drops h8's decision and h7's rule")
    fresh, = instances(1, watch=False)
    assert fresh.store.host_records() == ({"h7": True}, [])


def test_a_relisting_read_before_this_instances_apply_does_not_undo_it(instances, monkeypatch):
    """A host-records watch behind a compaction re-lists; an apply of this instance may commit after
    the listing was read and before it is applied. The listing must leave that apply's records, so
    that a later prune still sees and deletes them (once, in CI, it undid them: the prune kept h8)."""
    a, = instances(1, watch=False)
    a.b.core.policy.mode = admission.APPROVE
    doc = {"hosts": {"h7": {"admitted": True}, "h8": {"admitted": False}},
           "ports": {"h7": {"vm7": {"macs": ["02:00:00:00:00:07"]}}}}
    hosts, read = a.store.hosts, a.store.hosts.etcd.range_prefix

    def listing_then_an_apply(prefix: str):
        listed = read(prefix)
        assert a.req("POST", "/v1/apply", doc)[0] == 200  # commits, and a's core has it at once
        return listed
    monkeypatch.setattr(hosts.etcd, "range_prefix", listing_then_an_apply)
    hosts._relist(a.b)  # what the watch does on Compacted
    monkeypatch.setattr(hosts.etcd, "range_prefix", read)
    assert a.b.core.read.admission("h8")[0] is False and "vm7" in a.b.core.read.port_rules("h7")
    status, pruned = a.req("POST", "/v1/apply?prune=true", {"hosts": {"h7": {"admitted": True}}, "ports": {}})
    assert status == 200 and a.store.host_records() == ({"h7": True}, [])


def test_a_host_event_older_than_this_instances_write_of_its_key_is_not_applied(instances):
    """The watch may deliver another instance's admission after this one revoked the host: the
    host stays revoked (applied, it would have been admitted until the revocation's own event)."""
    a, b = instances(2, watch=False)
    assert a.req("PUT", "/v1/hosts/h9/admission", {"admitted": True})[0] == 200
    older = a.store.hosts.etcd.get(a.store.hosts.admission + "h9").mod_revision
    assert b.req("PUT", "/v1/hosts/h9/admission", {"admitted": False})[0] == 200
    b.store.hosts._apply(b.b, older, [etcd.Event(b.store.hosts.admission + "h9", b"admitted", older)])
    assert b.b.core.read.admission("h9")[0] is False


def test_an_apply_whose_host_records_overflow_one_transaction_writes_nothing(instances):
    (a,) = instances(1)
    doc = {"tenants": {f"t{i}": {"vni": i + 1, "vlan": i + 1} for i in range(100)},
           "ports": {"h1": {f"vm{i}": {"macs": ["02:00:00:00:00:01"]} for i in range(30)}}}
    status, body = a.req("POST", "/v1/apply", doc)
    assert status == 413 and "max-txn-ops" in body["error"]
    assert a.req("GET", "/v1/tenants")[1] == [] and a.store.revision == 0 and a.store.host_records() == ({}, [])

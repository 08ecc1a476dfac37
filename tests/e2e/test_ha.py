"""Three controller instances on one etcd (docs/operator/ha.md), on the real lab: the
leader is OpenFlow MASTER with an etcd-derived generation, a kill -9 hands over as soon as etcd
drops the dead leader's lease without a lost packet or a rewritten flow, a stale master is
refused by the switches and sends nothing, and the data plane forwards while etcd is gone."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from controller.cli.client import ApiError
from lab.ha import HaLab, role_request_by_hand
from lab.netlab import Lab, wait_for
from lab.overlay import TENANTS, PingStream, announce, assert_kept, flood_buckets, flow_table, kept_through_recovery
from lab.traffic import UdpStream

# A failover takes at most: etcd dropping the dead leader's lease after its last renewal (measured
# in the same test: HaLab.lease_expiry, 1.5 s here), the survivors' next campaign (every TTL/6), and
# the role requests to the switches (milliseconds), plus this much for a loaded machine.
FAILOVER_SLACK_S = 0.3
BASELINE_LOSS_MAX = 200  # of 40,000 datagrams in the baseline stream: 20 ms of traffic
LOSS_NOISE = 100  # what a loaded machine loses with no failover at all (84 of 40,000 once; 82 of 80,000 in CI)
CAMPAIGN_S = 1 / 6  # lease_ttl 1 s
# etcd gone: the leader stops within its lease (1 s; measured 0.82-1.02 s). etcd back: a leader is
# MASTER everywhere after etcd's own election and a campaign (measured 1.60-1.97 s). About 2x.
FENCED_BOUND_S, ELECTED_AFTER_ETCD_BOUND_S = 2.0, 4.0


EXPIRY_SAMPLES = 3


def failover_bound(ha: HaLab) -> float:
    """The longest a failover may take on this etcd now (the lease-expiry baseline, measured now).

    etcd removes an expired lease when its lessor next looks, up to half a second after the TTL:
    one sample of the expiry may land early in that window while the failover lands late (a CI
    run measured 1.05 s, and the failover took 1.54 s against its bound of 1.52 s). The latest
    of a few samples is the floor the failover stands on."""
    return max(ha.lease_expiry() for _ in range(EXPIRY_SAMPLES)) + CAMPAIGN_S + FAILOVER_SLACK_S


@pytest.fixture
def ha(request):
    lab = Lab()
    h = HaLab(lab)
    try:
        h.start()
        yield h
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(h.logs(60))
        h.close()
        lab.close()


def endpoints(ctl) -> dict[str, list[tuple]]:
    return {t: sorted((e["mac"], e["host"], tuple(e["ips"])) for e in ctl.api.get(f"/v1/tenants/{t}/endpoints"))
            for t in TENANTS}


def learned(ha: HaLab, ov) -> dict[str, list[tuple]]:
    """Every VM known to the leader; asked of whoever leads at each poll (on a loaded box the
    lease of the first leader may lapse right after the lab starts: a follower's list is only
    as of its last read-back)."""
    vms = list(ov.vms.values())
    want = {t: len(ov.tenant_vms(t)) for t in TENANTS}

    def settled():
        leader = ha.leader()
        if {t: len(e) for t, e in endpoints(leader).items()} == want:
            return leader
        # Learning itself is proven elsewhere (test_storms); here the VMs only have to be known. A GARP
        # that reached a switch before the leader (elected moments ago) had programmed it goes unlearned.
        announce(vms)
        return None

    announce(vms)
    return endpoints(wait_for(settled, 30, 0.5, "every VM learned by the leader"))


def took_over(ha: HaLab, survivors, since_wall: float, timeout: float = 10.0):
    """The new leader and how long after since_wall every switch had accepted it as MASTER."""
    new = ha.leader(timeout, among=survivors)
    doc = ha.role(new)
    return new, doc, max(s["accepted_at"] for s in doc["switches"].values()) - since_wall


def test_kill_9_of_the_leader_hands_over_without_loss_or_rewritten_flows(ha):
    ov = ha.overlay()
    before_eps = learned(ha, ov)
    bound = failover_bound(ha)
    src, dst = ov.vms[("blue", 1)], ov.vms[("blue", 2)]
    # The baseline, in the same run: the same stream without any failover. On a loaded machine it
    # loses datagrams by itself; it must lose few (else the comparison proves nothing), and the
    # failover stream, twice as long, at most twice as many (measured: 0 and 0; once the baseline lost 84).
    base = UdpStream(src, dst, pps=10_000, seconds=4).start()
    try:
        baseline = base.result()
    finally:
        base.stop()
    assert baseline.lost <= BASELINE_LOSS_MAX and baseline.sent > 25_000, f"no failover, yet {baseline}: overloaded"
    old = ha.leader()
    survivors = [c for c in ha.ctls if c is not old]
    counters0 = {ha.name(c): c.api.get("/v1/counters") for c in survivors}
    marks = {ha.name(c): c.log_mark() for c in survivors}
    stream = UdpStream(src, dst, pps=10_000, seconds=8).start()
    try:
        rx0 = dst.host.port_stats()["patch-int"]["tx_packets"]
        wait_for(lambda: dst.host.port_stats()["patch-int"]["tx_packets"] - rx0 > 5_000, 5, 0.05, "stream flowing")
        before = {h.name: flow_table(h) for h in ov.hosts}
        killed_wall = time.time()
        ha.signal(old, signal.SIGKILL)
        new, doc, failover = took_over(ha, survivors, killed_wall)
        wait_for(lambda: endpoints(new) == before_eps, 5, 0.05, "endpoints recovered by the new leader")
        result = stream.result()
    finally:
        stream.stop()
    kept = assert_kept(before, {h.name: flow_table(h) for h in ov.hosts})
    counters = new.api.get("/v1/counters")
    # The takeover's recovery window ends with a pass over what nobody claimed: nothing may go then either.
    _, late = kept_through_recovery(new, marks[ha.name(new)], before, ov.hosts)
    c0 = counters0[ha.name(new)]
    sent = {k: counters.get(k, 0) - c0.get(k, 0) for k in ("flow_mods", "endpoints_recovered")}
    print(f"\nbaseline: {baseline.sent} datagrams at {baseline.pps:.0f}/s, {baseline.lost} lost; "
          f"kill -9 of {ha.name(old)}: {result.sent} at {result.pps:.0f}/s, {result.lost} lost; "
          f"{ha.name(new)} MASTER on every switch {failover:.2f} s after the kill (bound {bound:.2f} s: etcd's "
          f"lease expiry measured now + a campaign + {FAILOVER_SLACK_S} s; generation {doc['generation']}); "
          f"{kept} flows kept (durations ran on) through the recovery window; flow-mods sent by the new "
          f"leader {sent['flow_mods']} (after the window {late['flow_mods'] - c0['flow_mods']}), endpoints "
          f"recovered {sent['endpoints_recovered']}")
    # Twice the baseline's loss, or twice the machine's noise when the baseline was lucky (0): a
    # data path that depended on the controller would lose the seconds of the failover, thousands.
    assert result.lost <= 2 * max(baseline.lost, LOSS_NOISE) and result.sent > 50_000
    assert failover <= bound
    assert sent["endpoints_recovered"] == sum(len(e) for e in before_eps.values())
    assert sent["flow_mods"] == 0 and late["flow_mods"] == c0["flow_mods"]


def switch_roles(host, ip: str) -> str:
    """The role br1 gives the controller at ip, as its OVSDB Controller row says."""
    rows = host.vsctl_json("--columns=target,role", "list", "Controller")
    return next(str(r["role"]) for r in rows if r["target"] == f"tcp:{ip}:6653")


def test_a_stopped_leader_that_resumes_sends_nothing_is_refused_by_the_switches_and_steps_down(ha):
    ov = ha.overlay()
    learned(ha, ov)
    bound = failover_bound(ha)
    old = ha.leader()
    old_gen = ha.role(old)["generation"]
    survivors = [c for c in ha.ctls if c is not old]
    h1 = ov.hosts[0]
    frozen = old.api.get("/v1/counters")  # what it had sent and been refused when it froze
    stopped_wall = time.time()
    ha.signal(old, signal.SIGSTOP)
    new, doc, failover = took_over(ha, survivors, stopped_wall)
    assert doc["generation"] > old_gen
    # OVS enforces the generation on OpenFlow 1.3: the old leader's is refused now.
    refusals = {h.name: role_request_by_hand(h, "master", old_gen) for h in ov.hosts}
    assert set(refusals.values()) == {"stale"}, refusals
    # While it is stopped, tenant red is deleted (through the new leader) and a red VM appears on h1:
    # the stopped instance still has red, and reads both when it resumes; were it still master, the
    # port read before the deletion would put red's flows on h1.
    new.api.delete("/v1/tenants/red")
    wait_for(lambda: "dl_vlan=20" not in h1.ofctl("dump-flows", "br1"), 5, 0.05, "red gone from h1")
    ov.lab.add_vm(h1, "r9", TENANTS["red"][1], "192.168.1.9/24")  # the new leader knows no red: no flows
    flows = set(flow_table(h1))
    ha.signal(old, signal.SIGCONT)
    resumed = time.monotonic()

    def stepped_down_and_caught_up() -> bool:
        return ha.role(old)["role"] == "follower" and "red" not in {t["name"] for t in old.api.get("/v1/tenants")}
    wait_for(stepped_down_and_caught_up, 10, 0.05, "the old leader resumed, stepped down and read the deletion")
    stepped = time.monotonic() - resumed

    def moved() -> dict[str, int]:
        now = old.api.get("/v1/counters")
        return {k: now.get(k, 0) - frozen.get(k, 0) for k in ("flow_mods", "switch_errors", "role_refused")}
    # It asks every switch for SLAVE with its old generation: each refuses that as stale.
    wait_for(lambda: moved()["role_refused"] >= len(ov.hosts), 5, 0.05, "every switch refused the old generation")
    # Whatever it did meanwhile (it also reads h1's new red port): it sends no flow-mod, so no switch
    # refuses one (a slave's flow-mod is refused by OVS: h1's flows alone could not tell), and
    # nothing changes on h1; watched for a second after it stepped down.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert set(flow_table(h1)) == flows, "the stale leader changed h1's flows"
        time.sleep(0.1)
    wait_for(lambda: all(switch_roles(h, old.listen_ip) == "slave" for h in ov.hosts), 15, 0.2,
             "every switch lists the old leader as slave")
    role, since_frozen = ha.role(old), moved()
    print(f"\nSIGSTOP of {ha.name(old)} (generation {old_gen}): {ha.name(new)} MASTER everywhere {failover:.2f} s "
          f"later (bound {bound:.2f} s; generation {doc['generation']}); a MASTER request with generation {old_gen} "
          f"refused as {sorted(set(refusals.values()))} by {len(refusals)} switches; after SIGCONT {ha.name(old)} "
          f"was {role['role']} within {stepped:.2f} s (leader {role['leader']}); since it froze: flow-mods "
          f"{since_frozen['flow_mods']}, switch errors {since_frozen['switch_errors']}, of them role refusals "
          f"{since_frozen['role_refused']}; h1's {len(flows)} flows unchanged")
    assert failover <= bound
    assert role["role"] == "follower" and role["leader"] == ha.name(new)
    assert ha.role(new)["role"] == "leader"
    assert since_frozen == {"flow_mods": 0, "switch_errors": len(ov.hosts), "role_refused": len(ov.hosts)}, since_frozen


def test_failover_works_without_one_etcd_member_and_forwarding_goes_on_without_etcd(ha):
    ov = ha.overlay()
    learned(ha, ov)
    ha.etcd.kill(0)  # one member of three: the other two keep a quorum (after an election if m0 led)
    ha.etcd.wait_healthy()
    bound = failover_bound(ha)  # on the two members left
    old = ha.leader()
    survivors = [c for c in ha.ctls if c is not old]
    killed_wall = time.time()
    ha.signal(old, signal.SIGKILL)
    new, doc, failover = took_over(ha, survivors, killed_wall)
    assert failover <= bound, f"{failover:.2f} s > {bound:.2f} s"
    # etcd gone entirely: no instance can hold the lease, the leader steps down on its own clock,
    # and the switches forward on with what they hold.
    b1, b2 = ov.vms[("blue", 1)], ov.vms[("blue", 2)]
    outage_s = 5.0
    with PingStream(b1, b2.ip) as pings:
        ha.etcd.stop_all()
        gone = time.monotonic()
        wait_for(lambda: all(ha.role(c)["role"] == "follower" for c in survivors), 5, 0.05, "no leader without etcd")
        fenced = time.monotonic() - gone
        time.sleep(max(0.0, outage_s - (time.monotonic() - gone)))  # the outage lasts this long
        assert pings.running()
        ha.etcd.start_all()
        back_wall = time.time()
        leader, doc2, elected = took_over(ha, survivors, back_wall, timeout=20)
    lost = len(pings.lost)
    # Everything resumes: a VM that boots now is learned and reachable.
    vm = ov.lab.add_vm(ov.hosts[2], "b9", TENANTS["blue"][1], "192.168.1.9/24")
    announce([vm])
    wait_for(lambda: b1.ping(vm.ip, timeout=0.5), 10, 0.05, "a new VM reachable after etcd came back")
    assert any(e["mac"] == vm.mac for e in leader.api.get("/v1/tenants/blue/endpoints"))
    print(f"\netcd member m0 lost, then kill -9 of {ha.name(old)}: {ha.name(new)} MASTER everywhere "
          f"{failover:.2f} s later (bound {bound:.2f} s); etcd gone for {outage_s:.0f} s: the leader stepped down "
          f"after {fenced:.2f} s (bound {FENCED_BOUND_S} s), {lost} of {pings.replies + lost} echoes lost "
          f"(every 20 ms); "
          f"etcd back: {ha.name(leader)} MASTER everywhere {elected:.2f} s after it was healthy (bound "
          f"{ELECTED_AFTER_ETCD_BOUND_S} s; generation {doc2['generation']})")
    assert lost == 0
    assert fenced <= FENCED_BOUND_S and elected <= ELECTED_AFTER_ETCD_BOUND_S


def test_concurrent_writes_on_all_three_instances_reach_every_switch_programmed_by_the_leader_alone(ha):
    ov = ha.overlay()
    # Who programmed can be told only if one instance led throughout: if leadership moved (a lease
    # that lapsed on this loaded machine), say so and try again with new tenants, once.
    for attempt in range(2):
        moved = concurrent_creates(ha, ov, attempt)
        if moved is None:
            return
        print(f"\nattempt {attempt + 1}: {moved}; again with new tenants")
    pytest.fail(f"leadership moved during both attempts: {moved}")


def concurrent_creates(ha: HaLab, ov, attempt: int) -> str | None:
    """15 creates over the three instances at once; None when one leader programmed them all, else
    how leadership moved."""
    per_instance, vlan0, vni0 = 4, 101 + 20 * attempt, 6000 + 1000 * attempt
    tenants = {f"t{k}-{i}-{attempt}": (vni0 + 10 * k + i, vlan0 + per_instance * (k - 1) + i)
               for k in range(1, 4) for i in range(per_instance)}
    shared, shared_vlan = f"shared-{attempt}", vlan0 + 3 * per_instance
    tenants[shared] = (vni0 + 900, shared_vlan)
    for h in ov.hosts:  # a member port of every new tenant on every host: their flows go everywhere
        args = []
        for _vni, vlan in tenants.values():
            args += ["--", "add-port", "br0", f"m{vlan}", f"tag={vlan}", "--", "set", "Interface", f"m{vlan}",
                     "type=internal"]
        h.vsctl(*args)

    def create(ctl, name: str, vni: int, vlan: int) -> int:
        try:
            ctl.api.post("/v1/tenants", {"name": name, "vni": vni, "vlan": vlan})
            return 201
        except ApiError as e:
            return e.status
    writes = [(ctl, f"t{k}-{i}-{attempt}", *tenants[f"t{k}-{i}-{attempt}"]) for i in range(per_instance)
              for k, ctl in enumerate(ha.ctls, 1)]
    # and the same name on all three at once, each with its own VNI: one wins, two get 409
    writes += [(ctl, shared, vni0 + 900 + k, shared_vlan) for k, ctl in enumerate(ha.ctls)]
    leader = ha.leader()
    generation, mods = ha.role(leader)["generation"], {ha.name(c): c.api.get("/v1/counters")["flow_mods"]
                                                        for c in ha.ctls}
    t0 = time.monotonic()
    with ThreadPoolExecutor(len(writes)) as pool:
        statuses = list(pool.map(lambda w: create(*w), writes))
    acked = time.monotonic()
    won = [w for w, st in zip(writes, statuses, strict=True) if w[1] == shared and st == 201]
    assert statuses[:-3] == [201] * (len(writes) - 3) and sorted(statuses[-3:]) == [201, 409, 409], statuses
    want = {name: vni for name, (vni, _) in tenants.items() if name != shared} | {shared: won[0][2]}
    for ctl in ha.ctls:  # every instance has every acknowledged write (from etcd, by its watch)
        wait_for(lambda c=ctl: {(t["name"], t["vni"]) for t in c.api.get("/v1/tenants")} >= set(want.items()), 5, 0.05,
                 f"{ha.name(ctl)} lists every write")
    wait_for(lambda: all(set(want.values()) <= set(flood_buckets(h)) for h in ov.hosts), 10, 0.05,
             "every new tenant's flood group on every switch")
    programmed = time.monotonic() - acked
    now = ha.role(leader)["generation"]
    if now != generation:
        return f"the generation went {generation} -> {now} while {ha.name(leader)} was to program the writes"
    sent = {ha.name(c): c.api.get("/v1/counters")["flow_mods"] - mods[ha.name(c)] for c in ha.ctls}
    print(f"\n{len(writes)} concurrent creates over {len(ha.ctls)} instances acknowledged in {acked - t0:.2f} s "
          f"(the same name on all three: one 201, two 409; the winner was {ha.name(won[0][0])}); all "
          f"{len(want)} tenants on all {len(ov.hosts)} switches {programmed:.2f} s later; flow-mods sent meanwhile "
          f"{sent} (leader {ha.name(leader)})")
    # at least one flow-mod per new tenant per switch, all from the leader
    assert sent.pop(ha.name(leader)) >= len(want) * len(ov.hosts) and set(sent.values()) == {0}, sent
    return None

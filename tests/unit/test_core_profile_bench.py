"""bench/core_profile.py's phases do the work they time: the VMs after learning are learned."""

import json

from bench import core_profile


def run(capsys, vm_events: int) -> dict:
    assert core_profile.main(["--hosts", "6", "--vm-events", str(vm_events)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_vms_after_learning_are_each_learned_on_their_member_hosts(capsys):
    before, after = run(capsys, 0), run(capsys, 4)
    assert after["vm_events"] == 4 and after["vm_cpu_ms_p50"] > 0
    assert after["endpoints"] == before["endpoints"]  # the plan's, counted before the phase
    # Each more VM: its source entries at home and its unicast and responder entries elsewhere.
    assert after["flows_held"] >= before["flows_held"] + 4 * 3

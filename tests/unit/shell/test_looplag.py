"""Event-loop lag: the histogram, the probe, and /metrics also while the loop is stuck."""

from controller.northbound.rest import Api
from controller.shell.looplag import LAG_METRIC, WAITING_METRIC, LoopLag
from tests.unit.api_backend import Backend, call


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def samples(lag: LoopLag) -> dict[str, float]:
    out = {}
    for family in lag.collect():
        for s in family.samples:
            key = s.name + ("" if "le" not in s.labels else f"{{le={s.labels['le']}}}")
            out[key] = s.value
    return out


def test_waits_land_in_cumulative_buckets_with_sum_and_count():
    lag = LoopLag(buckets=(0.01, 0.1, 1.0))
    for wait in (0.001, 0.01, 0.05, 0.5, 3.0):
        lag.observe(wait)
    got = samples(lag)
    assert [got[f"{LAG_METRIC}_bucket{{le={b}}}"] for b in ("0.01", "0.1", "1.0", "+Inf")] == [2, 3, 4, 5]
    assert got[f"{LAG_METRIC}_count"] == 5 and abs(got[f"{LAG_METRIC}_sum"] - 3.561) < 1e-9
    assert got[WAITING_METRIC] == 0


def test_the_probe_waits_in_the_queue_and_shows_how_long_while_it_waits():
    clock = Clock()
    lag = LoopLag(clock)
    queue: list = []
    lag.probe(queue.append)
    clock.t += 3.0
    lag.probe(queue.append)  # still queued: no second probe piles up behind it
    assert len(queue) == 1 and lag.waiting() == 3.0
    queue.pop()()  # the loop finally runs it
    assert lag.waiting() == 0.0
    lag.probe(queue.append)
    assert len(queue) == 1


class StuckBackend(Backend):
    """The event loop never answers: every call times out."""

    def call(self, fn, timeout=None):
        if timeout is None:
            raise AssertionError("a call without a timeout would hang the request forever")
        raise TimeoutError


def test_metrics_exports_the_lag_and_still_answers_when_the_loop_is_stuck(tmp_path):
    backend = Backend(str(tmp_path / "db.sqlite"))
    backend.loop_lag = LoopLag()
    backend.metrics.register(backend.loop_lag)  # as the app does
    backend.loop_lag.observe(0.2)
    status, text = call(Api(backend), "GET", "/metrics")
    assert status == 200
    assert f'{LAG_METRIC}_bucket{{le="0.25"}} 1.0' in text and f'{LAG_METRIC}_bucket{{le="0.1"}} 0.0' in text

    stuck = StuckBackend(str(tmp_path / "db2.sqlite"))
    clock = Clock()
    stuck.loop_lag = LoopLag(clock)
    stuck.metrics.register(stuck.loop_lag)
    stuck.loop_lag.probe(lambda fn: None)  # posted, never run
    clock.t += 7.5
    status, text = call(Api(stuck), "GET", "/metrics")
    assert status == 200 and f"{WAITING_METRIC} 7.5" in text

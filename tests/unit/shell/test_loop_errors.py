"""Work posted to the event loop that raises: logged once with its traceback, counted in /metrics,
and the loop goes on (issue 22.9)."""

import logging

from controller.northbound.rest import Api
from controller.shell.loop import EventCall
from controller.shell.looplag import LoopLag
from tests.unit.api_backend import Backend, call


def broken_tick() -> None:
    raise KeyError("h9")


def test_work_that_raises_is_logged_once_with_its_traceback_and_counted_on_metrics(tmp_path, caplog):
    backend = Backend(str(tmp_path / "db.sqlite"))
    lag = LoopLag()
    backend.metrics.register(lag)  # as the app does
    caplog.set_level(logging.INFO)
    failed = EventCall(broken_tick)
    failed.run(lag)
    fine = EventCall(lambda: 42)
    fine.run(lag)  # the loop goes on
    assert fine.result == 42 and fine.error is None
    assert isinstance(failed.error, KeyError) and failed.done.is_set()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "broken_tick" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "KeyError: 'h9'" in caplog.text  # the traceback
    status, text = call(Api(backend), "GET", "/metrics")
    assert status == 200 and "\noverlay_event_loop_errors_total 1.0\n" in text
    EventCall(broken_tick).run(lag)
    assert "\noverlay_event_loop_errors_total 2.0\n" in call(Api(backend), "GET", "/metrics")[1]

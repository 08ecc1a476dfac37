"""Turns on the event loop (controller/shell/turns.py): let go once a turn is over, not before."""

from controller.shell.turns import Turns


def test_work_lets_the_loop_go_only_once_its_turn_is_over_and_the_clock_restarts_then():
    now = [0.0]
    slept: list[float] = []
    turns = Turns(sleep=slept.append, clock=lambda: now[0], turn_s=0.005)
    now[0] = 0.004
    turns.take()
    assert slept == []
    now[0] = 0.006
    turns.take()
    assert slept == [0]
    now[0] = 0.010  # 4 ms since it let go
    turns.take()
    assert slept == [0]

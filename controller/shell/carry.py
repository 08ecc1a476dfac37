"""Carrying out the core's operations for the app (apps/overlay.py's apply), in this order: the
revision each switch's batch carries is taken first (what follows may yield); EVPN routes follow
the state the operations came from; a switch that is not who it claims is closed by this instance
whatever its role; a follower reads switches back and changes nothing; what remains goes out in
order, OVSDB operations in their place (controller/shell/sender.py).
"""

from __future__ import annotations

import logging
from typing import Any

from controller.model.ops import Disconnect, Op, ReadSwitch

LOG = logging.getLogger("overlay")


def carry_out(app: Any, ops: list[Op], hold: bool = False) -> None:
    revisions = app.news.batch_revisions(app.core, ops)
    if app.evpn is not None:  # and peers' routes a new tenant takes
        ops = [*ops, *app.evpn.sync()]
    for op in ops:
        if isinstance(op, Disconnect):
            disconnect(app, op)
    app.news.from_core(app.core)
    ops = [op for op in app.leadership.writable(ops) if not isinstance(op, Disconnect)]
    for op in ops:
        if isinstance(op, ReadSwitch):
            app.readback.start(op.dpid, app.now())
    if app.core.pending():
        app.pump.wake()
    # counted as sent: a core that still thinks it leads computes what is never sent (docs: the metric)
    app.core.counters["flow_mods"] += app.sender.send_in_order(ops, app.ovsdb.carry_out, revisions, hold)


def forget_switch(app: Any, dpid: int) -> None:
    """A switch's connection is gone (or closed): every collaborator forgets it."""
    app.metrics.datapath_gone(dpid)
    app.sender.gone(dpid)
    app.leadership.roles.gone(dpid)
    app.readback.gone(dpid)
    app.stats.gone(dpid)
    app.probes.gone(dpid)


def disconnect(app: Any, op: Disconnect) -> None:
    """The core found the switch is not who it claims (it has already forgotten it)."""
    dp = app.sender.datapaths.get(op.dpid)
    if dp is not None:
        LOG.warning("switch %016x closed: %s", op.dpid, op.why)
        forget_switch(app, op.dpid)
        dp.close()

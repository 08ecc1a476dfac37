"""The OpenFlow side of "nobody takes another host's place" (the rules: controller/core/identity.py).

- A switch whose claim the core refuses (its datapath ID connected already, from another address,
  or with another host's certificate) is closed before anything is sent to it; the switch that
  holds that datapath ID is only sent an echo request, and closed if it does not answer within
  PROBE_S (it was dead without a word, a crash or a cut cable: its host, reconnecting, is let in).
- Messages of a switch connection that does not hold its datapath ID (refused, or closed and not
  yet gone) are dropped before any handler sees them: the core never learns from an impostor.
- The core may ask to close a switch (model.ops.Disconnect): one that connected under a datapath ID
  a view later showed to be another certificate's host's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from controller.model.state import Peer
from controller.southbound import ofmsg

LOG = logging.getLogger("overlay")
PROBE_S = 5.0  # a switch that does not answer an echo in this long, once another claims its datapath ID, is dead


def peer_of(dp: Any) -> Peer:
    """Who a switch connection is: its address, and its certificate's CN over TLS (set by the TLS
    listener in controller/shell/oskenpatch.py; None otherwise)."""
    address = dp.address if isinstance(dp.address, tuple) else (str(dp.address), 0)
    host = f"[{address[0]}]" if ":" in str(address[0]) else str(address[0])
    return Peer(f"{host}:{address[1]}", getattr(dp, "peer_cn", None))


def registered(handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """For the app's OpenFlow handlers: only the connection that holds its datapath ID is heard."""

    @functools.wraps(handler)
    def run(app: Any, ev: Any) -> None:
        dp = ev.msg.datapath
        if app.sender.datapaths.get(dp.id) is dp:
            handler(app, ev)
    return run


class Probes:
    """Echo requests to switches whose datapath ID another connection claims, and their answers."""

    def __init__(self, datapaths: Mapping[int, Any]) -> None:
        self.datapaths = datapaths  # the connections that hold their datapath IDs (the sender's)
        self.asked: dict[int, tuple[Any, int, float]] = {}  # dpid -> (connection, echo xid, sent at)

    def refuse(self, dp: Any, dpid: int, now: float) -> None:
        """Close a refused connection; ask the one that holds dpid whether it is still there."""
        dp.close()
        holder = self.datapaths.get(dpid)
        if holder is None or holder is dp or dpid in self.asked:
            return
        echo = ofmsg.echo_request()
        holder.set_xid(echo)
        try:
            holder.send_msg(echo)
        except Exception as e:  # its socket is gone: the disconnect is on its way
            LOG.info("switch %016x: echo not sent (%s)", dpid, e)
            return
        self.asked[dpid] = (holder, echo.xid, now)

    def replied(self, dp: Any, xid: int) -> None:
        asked = self.asked.get(dp.id)
        if asked is not None and asked[0] is dp and asked[1] == xid:
            del self.asked[dp.id]

    def overdue(self, now: float) -> None:
        """Close the switches that did not answer in PROBE_S."""
        for dpid, (dp, _, sent) in list(self.asked.items()):
            if now - sent < PROBE_S:
                continue
            del self.asked[dpid]
            if self.datapaths.get(dpid) is dp:
                LOG.warning("switch %016x silent for %.0f s after an echo while another connection claims it: closed",
                            dpid, now - sent)
                dp.close()

    def gone(self, dpid: int) -> None:
        self.asked.pop(dpid, None)

"""A WSGI answer its client cut short (an event stream closed) is one log line, not a traceback."""

import logging

from controller.shell import oskenpatch

TB = """Traceback (most recent call last):
  File "eventlet/wsgi.py", line 683, in handle_one_response
    write(b''.join(towrite))
BrokenPipeError: [Errno 32] Broken pipe
"""


def test_a_client_gone_is_one_line_and_other_tracebacks_stay(caplog):
    oskenpatch.quiet_gone_clients()
    oskenpatch.quiet_gone_clients()  # once
    log = logging.getLogger("os_ken.lib.hub")
    assert sum(isinstance(f, oskenpatch._ClientGone) for f in log.filters) == 1
    with caplog.at_level(logging.INFO, logger="os_ken.lib.hub"):
        log.info(TB.rstrip("\n"))
        log.info(TB.replace("BrokenPipeError: [Errno 32] Broken pipe", "KeyError: 'x'"))
    assert caplog.messages[0] == ("REST: a client went away while being answered "
                                  "(BrokenPipeError: [Errno 32] Broken pipe)")
    assert caplog.messages[1].startswith("Traceback") and "KeyError" in caplog.messages[1]

"""overlay-controller's command line, as an operator meets it (#22.8): the installed script, run.

A config file it cannot find is one line and exit status 2; a key in the file that no option reads
is named in a warning at start; --help shows our options, grouped by section (os-ken's under
--help-all); --shell_completion gives a script bash runs; and the start-up log holds the
controller's lines, not third-party deprecation warnings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg

from controller.shell import config, usage
from lab.netlab import free_tcp_ports, wait_for

CONTROLLER = str(Path(sys.executable).parent / "overlay-controller")


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([CONTROLLER, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_a_missing_config_file_is_one_line_and_exit_status_2(tmp_path):
    done = run("--config-file", str(tmp_path / "nope.conf"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"overlay-controller: Failed to find some config files: {tmp_path}/nope.conf"]


def test_help_shows_our_options_grouped_and_os_kens_under_help_all():
    done = run("--help")
    assert done.returncode == 0 and done.stderr == ""
    text = done.stdout
    ours = [flag for flag, _ in usage._flags()]
    assert all(f"  {flag}" in text for flag in ours), "an option of ours missing from --help"
    sections = [line for line in text.splitlines() if line.endswith("options:")]
    assert sections == ["options:", "bgp options:", "etcd options:", "overlay options:", "ovsdb options:"]
    listed = {line.split()[0].rstrip(",") for line in text.splitlines() if line.startswith("  -")}
    assert listed - {*ours, "-h", "--config-dir", "--config-file", "--shell_completion"} == set()
    assert len(text.splitlines()) < 160  # was 345, most of them os-ken's
    every = run("--help-all")
    assert every.returncode == 0 and len(every.stdout.splitlines()) > 250
    options = {line.split()[0].rstrip(",") for line in every.stdout.splitlines() if line.startswith("  -")}
    assert set(usage.OSKEN_OPTIONS) <= options, "--help names an os-ken option os-ken does not have"
    assert set(ours) <= options


def completions(script: str, *words: str) -> list[str]:
    """What bash offers after `overlay-controller WORDS...` (the last word being completed)."""
    line = " ".join(["overlay-controller", *words])
    program = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words)}; _overlay_controller\n"
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completion_is_a_script_bash_runs():
    done = run("--shell_completion", "bash")  # oslo.config's own crashed: its wheel lacks the template
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert completions(done.stdout, "--overlay-tunnel-t") == ["--overlay-tunnel-type"]
    assert completions(done.stdout, "--overlay-tunnel-type", "g") == ["gre", "geneve"]
    assert "--ofp-tcp-listen-port" in completions(done.stdout, "--ofp")
    zsh = run("--shell_completion", "zsh")
    assert zsh.returncode == 0 and "bashcompinit" in zsh.stdout
    wrong = run("--shell_completion", "fish")
    assert wrong.returncode == 2 and "bash or zsh" in wrong.stderr


def parsed(tmp_path: Path, text: str) -> cfg.ConfigOpts:
    path = tmp_path / "overlay.conf"
    path.write_text(text)
    conf = cfg.ConfigOpts()
    config.register(conf)
    conf(args=["--config-file", str(path)], default_config_files=[])
    return conf


@pytest.mark.parametrize("text, found", [
    ("[overlay]\ntunnel_type = gre\nmax_endpoints = 5\n[DEFAULT]\nwsapi_port = 8081\n", []),
    ("[overlay]\ntunel_type = gre\n", ["[overlay] tunel_type is not an option (did you mean tunnel_type?); ignored"]),
    ("[overlay]\ntunnel-type = gre\n", ["[overlay] tunnel-type is not an option (did you mean tunnel_type?); ignored"]),
    ("[DEFAULT]\nwsapi_prot = 1\n", ["[DEFAULT] wsapi_prot is not an option (did you mean wsapi_port?); ignored"]),
    ("[overlai]\nstore = etcd\n", ["[overlai] is not a section the controller reads (did you mean overlay?); ignored"]),
    ("[Overlay]\nstore = etcd\n", []),  # oslo.config reads section names in any case
])
def test_keys_no_option_reads_are_named(tmp_path, text, found):
    conf = parsed(tmp_path, text)
    assert config.unknown_options(conf) == [f"{tmp_path}/overlay.conf: {f}" for f in found]


def test_the_start_warns_of_a_misspelt_option_and_shows_no_third_party_warnings(tmp_path):
    of_port, ovsdb_port, rest_port = free_tcp_ports(3, "127.0.0.1")
    conf = tmp_path / "overlay.conf"
    conf.write_text(f"[DEFAULT]\nwsapi_port = {rest_port}\n"
                    f"ofp_listen_host = 127.0.0.1\nofp_tcp_listen_port = {of_port}\n"
                    f"[ovsdb]\naddress = 127.0.0.1\nport = {ovsdb_port}\n"
                    f"[overlay]\nstate_dir = {tmp_path}\ntunel_type = gre\n")
    log = tmp_path / "controller.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([CONTROLLER, "--config-file", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is None and "wsgi starting up" in log.read_text(), 60, interval=0.1,
                 message=f"the controller's start (exit status {proc.poll()})")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = log.read_text()
    assert f"config: {conf}: [overlay] tunel_type is not an option (did you mean tunnel_type?); ignored" in text
    assert "tunnels=vxlan" in text  # the default still holds: the warning is the operator's only clue
    noise = [line for line in text.splitlines() if "Warning" in line or "site-packages" in line or "RLock" in line]
    assert noise == [], text  # eventlet's and cryptography's deprecations, eventlet's RLock notice: not ours
    assert "Traceback" not in text


def test_a_reload_names_a_misspelt_option_too(tmp_path, caplog):
    from controller.core.core import Core
    from controller.shell import reload

    conf = parsed(tmp_path, "[overlay]\ntunnel_type = vxlan\n")
    core = Core(config.settings(conf), [])
    (tmp_path / "overlay.conf").write_text("[overlay]\ntunnel_type = gre\ntunnel_prots = flow\n")
    assert reload.reload(conf, core, now=1.0) is not None
    assert f"config reload: {tmp_path}/overlay.conf: [overlay] tunnel_prots is not an option (did you mean " \
           "tunnel_ports?); ignored" in caplog.text

"""`overlay-controller --help` and `--shell_completion`: the controller's own options first.

os-ken registers about 90 options of its own (most do nothing for this app), and oslo.config's help
lists them all before ours (345 lines). Our help is built from the options the app registers
(config.list_opts(): one place), by oslo.config itself on a ConfigOpts of its own; os-ken's full list
stays one flag away (--help-all). The completion script offers the same options: oslo.config's own
(--shell_completion) needs a template its wheel does not ship, and crashed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

from oslo_config import cfg

from controller.shell import config

# os-ken's options an operator of this controller uses: the OpenFlow listener, its TLS, the log.
# tests/unit/shell/test_main.py checks each is an option of the real parser (--help-all).
OSKEN_OPTIONS = ("--ofp-listen-host", "--ofp-tcp-listen-port", "--ofp-ssl-listen-port", "--ctl-privkey",
                 "--ctl-cert", "--ca-certs", "--log-file", "--default-log-level", "--verbose")
DESCRIPTION = ("The sdn-overlay controller: os-ken's manager with the overlay app. Every option below can be "
               "set in the --config-file (its section is the flag's prefix: --overlay-tunnel-type is "
               "[overlay] tunnel_type) or given as a flag.")
EPILOG = ("os-ken's own options also apply; the ones that matter here: " + ", ".join(OSKEN_OPTIONS)
          + " (the OpenFlow listener, its TLS, the log). --help-all lists all of os-ken's; --version prints "
          "the controller's version.")
FILE_OPTIONS = ("--config-file", "--config-dir", "--log-file", "--ctl-privkey", "--ctl-cert", "--ca-certs",
                "--overlay-state-dir", "--overlay-db", "--overlay-api-token-file")


def _ours() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    for group, opts in config.list_opts():
        conf.register_cli_opts(opts, group=None if group == "DEFAULT" else group)
    return conf


def short_help(prog: str) -> str:
    """The help of our options, grouped by section, as oslo.config writes it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        _ours()(args=["--help"], prog=prog, usage=f"{prog} [--config-file PATH] [OPTION ...]",
                description=DESCRIPTION, epilog=EPILOG, default_config_files=[])
    return out.getvalue()


def _flags() -> Iterator[tuple[str, tuple[str, ...]]]:
    """(flag, its fixed choices) for each of our options, as oslo.config names them on the command line."""
    for group, opts in config.list_opts():
        prefix = "" if group == "DEFAULT" else f"{group}-"
        for opt in opts:
            choices = tuple(getattr(opt.type, "choices", None) or ())
            yield f"--{prefix}{opt.name}", choices
            if isinstance(opt, cfg.BoolOpt):
                yield f"--{prefix}no{opt.name}", ()


BASH = r"""# bash completion for {prog}: eval "$({prog} --shell_completion bash)"
_{func}() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  case "$prev" in
{cases}
    {files}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  COMPREPLY=($(compgen -W "{words}" -- "$cur"))
}}
complete -F _{func} {prog}
"""


def completion(shell: str, prog: str) -> str:
    """A completion script: bash's, or zsh's through bashcompinit."""
    flags = dict(_flags())
    cases = "\n".join(f'    {flag}) COMPREPLY=($(compgen -W "{" ".join(choices)}" -- "$cur")); return ;;'
                      for flag, choices in flags.items() if choices)
    words = " ".join([*flags, *OSKEN_OPTIONS, "--config-file", "--config-dir", "--help", "--help-all", "--version"])
    script = BASH.format(prog=prog, func=prog.replace("-", "_"), cases=cases, files="|".join(FILE_OPTIONS),
                         words=words)
    return script if shell == "bash" else "autoload -U +X bashcompinit && bashcompinit\n" + script

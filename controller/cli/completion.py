"""overlayctl's shell completion, made from its own parser (`overlayctl completion bash`): the
commands, their verbs and each one's options, so that it cannot drift from what overlayctl takes."""

from __future__ import annotations

import argparse

from controller.cli import fmt


def bash(p: argparse.ArgumentParser) -> str:
    """A bash completion script for this parser: commands, then verbs, then each one's options."""
    two, one = [], []
    top = []
    for noun, np in _choices(p).items():
        top.append(noun)
        verbs = _choices(np)
        for verb, vp in verbs.items():
            two.append(f'        "{noun} {verb}") opts="{" ".join(_options(vp))}" ;;')
        one.append(f'            "{noun}") opts="{" ".join([*verbs, *_options(np)])}" ;;')
    one.append(f'            *) opts="{" ".join(top + _options(p))}" ;;')
    return (BASH_TEMPLATE.replace("@TWO@", "\n".join(two)).replace("@ONE@", "\n".join(one))
            .replace("@FORMATS@", " ".join(fmt.FORMATS)).replace("@VALUED@", "|".join(_valued(p))))


def _choices(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subs[0].choices) if subs else {}


def _options(p: argparse.ArgumentParser) -> list[str]:
    """Its long options, and the fixed choices of its positionals (completion's 'bash')."""
    words = {s for a in p._actions for s in a.option_strings if s.startswith("--")}
    words |= {str(c) for a in p._actions if not a.option_strings and a.choices and
              not isinstance(a, argparse._SubParsersAction) for c in a.choices}
    return sorted(words)


def _valued(p: argparse.ArgumentParser) -> list[str]:
    """Every option that takes a value, anywhere: completion skips the value when it finds words."""
    out: set[str] = set()
    stack = [p]
    while stack:
        q = stack.pop()
        out |= {s for a in q._actions if a.nargs != 0 and a.option_strings for s in a.option_strings}
        stack += _choices(q).values()
    return sorted(out)


BASH_TEMPLATE = r"""# bash completion for overlayctl: eval "$(overlayctl completion bash)"
_overlayctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" words=() i opts
    case "$prev" in
        -o|--output|-f|--format) COMPREPLY=($(compgen -W "@FORMATS@" -- "$cur")); return ;;
        --token-file|--ca-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        @VALUED@) return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            @VALUED@) ((i++)) ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
    done
    case "${words[0]} ${words[1]}" in
@TWO@
        *) case "${words[0]}" in
@ONE@
           esac ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _overlayctl overlayctl
"""

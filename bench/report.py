"""The one way the benchmarks print a table: Markdown, so a run's output pastes into the README."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[object]], align: str) -> str:
    """head, the rule and one line per row; align: per column, "l" (text) or "r" (figures)."""
    rule = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)

"""How the benchmarks report: a Markdown table (a run's output pastes into docs/benchmarks/), then the
same results as JSON, also written to a file when asked."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[object]], align: str) -> str:
    """head, the rule and one line per row; align: per column, "l" (text) or "r" (figures)."""
    rule = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(table: str, doc: dict, path: str | None) -> None:
    """Print the table and the JSON document; write the document to path too (if given)."""
    print(table)
    print(json.dumps(doc))
    if path:
        with open(path, "w") as out:
            json.dump(doc, out, indent=1)

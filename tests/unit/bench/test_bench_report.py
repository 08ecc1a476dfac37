"""bench/report.py: the benchmarks' one table and JSON output."""

from __future__ import annotations

import json

from bench.report import markdown_table, publish


def test_a_table_has_its_head_an_aligned_rule_and_a_line_per_row():
    text = markdown_table(("trial", "killed", "s"), [(1, "c1", "1.08"), (2, "c3", "0.93")], "rlr")
    assert text.splitlines() == ["| trial | killed | s |", "|---:|---|---:|", "| 1 | c1 | 1.08 |", "| 2 | c3 | 0.93 |"]


def test_publish_prints_the_table_then_the_json_and_writes_the_file(tmp_path, capsys):
    doc = {"results": {"a": 1.5}}
    publish("| t |", doc, str(tmp_path / "out.json"))
    assert capsys.readouterr().out.splitlines() == ["| t |", json.dumps(doc)]
    assert json.loads((tmp_path / "out.json").read_text()) == doc
    publish("| t |", doc, None)  # no file asked for: only printed

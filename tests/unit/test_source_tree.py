"""The tree builds anywhere: nothing tracked points or refers outside it, and the wheel's source list is git's."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

from tests.packaging.test_wheel import copy_source, source_files

REPO = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_no_tracked_link_leaves_the_repository():
    links = [line.split("\t", 1)[1] for line in _git(REPO, "ls-files", "-s").splitlines() if line.startswith("120000")]
    outside = {p: os.readlink(REPO / p) for p in links
               if os.path.isabs(os.readlink(REPO / p)) or os.readlink(REPO / p).startswith("..")}
    assert not outside, f"tracked links that dangle on any other machine: {outside}"


# Notes that live on one developer's machine, not in the repository: the shared lab notes and the
# design article (their content is in lab/README.md and the docs), or any path under /work.
OUTSIDE = re.compile(r"/wor" + r"k/|\b(?:LAB|SEED)" + r"\.md\b")  # split: not a citation itself


def test_no_tracked_file_cites_a_path_outside_the_repository():
    cited = {}
    for path in _git(REPO, "ls-files").splitlines():
        try:
            text = (REPO / path).read_text()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # binary (an image), or a tracked file deleted in the work tree
        hits = [f"{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
        if hits:
            cited[path] = hits
    assert not cited, f"files that cite what only one machine has (say it in lab/README.md or docs/): {cited}"


# A merge left unresolved: three docs pages once carried both sides of a conflict for two sessions.
CONFLICT = re.compile(r"^(?:<{7} |={7}$|>{7} )", re.M)


def test_no_tracked_file_holds_an_unresolved_merge():
    unresolved = []
    for path in _git(REPO, "ls-files").splitlines():
        try:
            text = (REPO / path).read_text()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        if CONFLICT.search(text):
            unresolved.append(path)
    assert not unresolved, f"files with merge conflict markers: {unresolved}"


def test_the_wheel_source_skips_local_links_and_ignored_files(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text(".venv*\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    (repo / "pkg" / "new.py").write_text("y = 2\n")  # not yet added: still built
    (repo / ".venv-int").symlink_to("/nonexistent/elsewhere/.venv")  # ignored, dangling
    (repo / "stray-link").symlink_to("/nonexistent/too")  # not ignored, dangling
    assert source_files(repo) == [".gitignore", "pkg/mod.py", "pkg/new.py"]
    dst = tmp_path / "copy"
    copy_source(repo, dst)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file()) == source_files(repo)


ENDS_BLOCK = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def test_no_statement_follows_a_return_in_its_block():
    """Dead code after a return (#22.11: a pipeline function's second half was never run) misleads the
    reader about what runs; ruff has no stable rule for it yet."""
    dead = []
    for path in _git(REPO, "ls-files", "*.py").splitlines():
        for node in ast.walk(ast.parse((REPO / path).read_text(), path)):
            for block in (getattr(node, k, None) for k in ("body", "orelse", "finalbody")):
                if isinstance(block, list):
                    dead += [f"{path}:{s.lineno}" for s in block[:-1] if isinstance(s, ENDS_BLOCK)]
    assert not dead, f"statements after a return, raise, continue or break: {dead}"

"""The overlay file (`overlayctl apply -f overlay.yaml`): YAML read with the line of every field,
so that whatever refuses a field (the document's rules, controller/model/overlay_doc.py, here or
in the API's answer) is shown at its line: `overlay.yaml:7: tenants.blue.vni: ...`.

PyYAML's composer gives each node its position; the values are built from the nodes here (with
the safe loader's constructors), which also refuses a key given twice in one mapping (a plain
safe_load keeps the last one without a word).
"""

from __future__ import annotations

from typing import Any

import yaml  # PyYAML: already installed with os-ken (oslo.config needs it)

from controller.model.overlay_doc import Path, path_text, read
from controller.model.tenant_rules import TenantError


class FileError(Exception):
    """The file cannot be used: str() names the file, the line and the field."""


class _AtLine(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class OverlayFile:
    def __init__(self, name: str, doc: Any, lines: dict[Path, int]) -> None:
        self.name = name
        self.doc = doc
        self.lines = lines  # field path -> its line (1-based)

    def line_of(self, path: Path) -> int:
        """The line of the field, or of the nearest enclosing one the file has."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1

    def error(self, message: str, path: Path = ()) -> FileError:
        return FileError(f"{self.name}:{self.line_of(path)}: {message}")

    def check(self) -> None:
        """The document's rules, here, before anything is sent (FileError at the field's line)."""
        try:
            read(self.doc)
        except TenantError as e:
            raise self.error(str(e), e.path) from None


def loads(text: str, name: str = "<stdin>") -> OverlayFile:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {(): 1}
        doc = _value(loader, node, (), lines) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise FileError(f"{name}:{line}: not valid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise FileError(f"{name}: not valid YAML: {e}") from None
    except _AtLine as e:
        raise FileError(f"{name}:{e.line}: {e}") from None
    finally:
        loader.dispose()
    return OverlayFile(name, doc, lines)


def load(path: str, stdin: Any = None) -> OverlayFile:
    """The file at path ('-': standard input)."""
    if path == "-":
        return loads((stdin.read() if stdin is not None else ""), "<stdin>")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as e:
        raise FileError(f"{path}: cannot read it: {e}") from None
    return loads(text, path)


def _value(loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # merge keys (<<) as safe_load does them
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            where = key_node.start_mark.line + 1
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise _AtLine(where, f"{path_text(path) or 'the document'}: a key must be a name, not {key!r}")
            if key in out:
                raise _AtLine(where, f"{path_text(path + (str(key),))} is given twice (first at line "
                                     f"{lines[path + (str(key),)]})")
            lines[path + (str(key),)] = where
            out[key] = _value(loader, value_node, path + (str(key),), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_value(loader, item, path + (i,), lines))
        return items
    return loader.construct_object(node, deep=True)


"""MkDocs hook: the reference pages' generated parts, from the code that declares them.

A page holds a marker line `<!-- generate: NAME -->`; this replaces it with markdown made at build
time, so the docs cannot drift from the code:
- `openapi`: the REST API, from the OpenAPI document the controller serves (`SPEC`);
- `options`: every configuration option, from the oslo options `list_opts()` declares;
- `pipeline`: br1's tables, priorities and meters, from the pipeline's declarations (and the
  page's own table rows `| id | name |` are checked against them).
Modules are looked up in their sub-package first, then at their old flat place.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- generate: (\w+) -->$", re.M)


def module(*names: str) -> ModuleType:
    """The first of `names` that exists (a module that exists but fails to import raises)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not name.startswith(e.name):
                raise
    raise ModuleNotFoundError(f"none of {names}")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---- REST API, from the OpenAPI document -------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def _schema_type(s: dict) -> str:
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    kind = s.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        kind = f"array of {_schema_type(s.get('items', {}))}"
    elif kind == "object" and isinstance(s.get("additionalProperties"), dict) and not s.get("properties"):
        kind = f"object: name → {_schema_type(s['additionalProperties'])}"
    limits = []
    if "enum" in s:
        limits.append(", ".join(f"`{v}`" for v in s["enum"]))
    if "minimum" in s or "maximum" in s:
        limits.append(f"{s.get('minimum', '')}–{s.get('maximum', '')}")
    if "pattern" in s:
        limits.append(f"pattern `{s['pattern']}`")
    if s.get("nullable"):
        limits.append("or null")
    return kind + (f" ({'; '.join(limits)})" if limits else "")


def _properties(s: dict) -> list[str]:
    props = s.get("properties", {})
    if not props:
        return []
    required = set(s.get("required", ()))
    out = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, p in props.items():
        desc = p.get("description", "")
        if "default" in p:
            desc = f"{desc} (default `{p['default']}`)".strip()
        out.append(f"| `{name}` | {_cell(_schema_type(p))} | {'yes' if name in required else ''} | {_cell(desc)} |")
    return out


def _content(content: dict) -> str:
    return "; ".join(f"`{ctype}` {_schema_type(c.get('schema', {}))}" for ctype, c in content.items())


def openapi() -> str:
    spec = module("controller.northbound.openapi", "controller.openapi").SPEC
    comps = spec["components"]

    def resolve(obj: dict, kind: str) -> dict:
        return comps[kind][obj["$ref"].rsplit("/", 1)[1]] if "$ref" in obj else obj

    info = spec["info"]
    out = [f"OpenAPI {spec['openapi']}, *{info['title']}*, version {info['version']}. {info['description']}",
           "", "## Operations", ""]
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            summary = op["summary"]
            out += [f"### {method.upper()} {path}", "", summary + ("" if summary[-1] in ".?!" else "."), ""]
            notes = []
            if op.get("security") == []:
                notes.append("no token needed")
            if method == "get" and "head" in item:
                notes.append("`HEAD` too (the same status and headers, no body)")
            if notes:
                out += ["*" + "; ".join(notes) + ".*", ""]
            params = [resolve(p, "parameters") for p in op.get("parameters", [])]
            if params:
                out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
                out += [f"| `{p['name']}` | {p['in']} | {_cell(_schema_type(p.get('schema', {})))} | "
                        f"{'yes' if p.get('required') else ''} | {_cell(p.get('description', ''))} |" for p in params]
                out.append("")
            if "requestBody" in op:
                out += [f"Body: {_content(op['requestBody']['content'])}.", ""]
            out += ["| status | meaning | body |", "|---|---|---|"]
            for code, r in op["responses"].items():
                r = resolve(r, "responses")
                headers = ", ".join(f"`{h}`" for h in r.get("headers", {}))
                body = _content(r.get("content", {})) + (f"; headers {headers}" if headers else "")
                out.append(f"| {code} | {_cell(r.get('description', ''))} | {_cell(body)} |")
            out.append("")
    out += ["## Schemas", ""]
    for name, s in comps["schemas"].items():
        out += [f"### {name}", ""]
        if s.get("description"):
            out += [s["description"] + ".", ""]
        if s.get("additionalProperties") is False:
            out += ["No other fields are accepted.", ""]
        out += (_properties(s) or [f"Type: {_cell(_schema_type(s))}."]) + [""]
    return "\n".join(out)


# ---- configuration, from the oslo options ------------------------------------------------

OPT_TYPES = {"StrOpt": "string", "IntOpt": "integer", "FloatOpt": "number", "BoolOpt": "boolean",
             "PortOpt": "port", "HostAddressOpt": "host address", "ListOpt": "list", "DictOpt": "dict"}


def _opt_allowed(opt: Any) -> str:
    t = opt.type
    if getattr(t, "choices", None):
        return ", ".join(f"`{c}`" for c in t.choices)
    lo, hi = getattr(t, "min", None), getattr(t, "max", None)
    if lo is not None or hi is not None:
        return f"{'' if lo is None else lo}–{'' if hi is None else hi}"
    return ""


def options() -> str:
    config = module("controller.shell.config", "controller.config")
    out = []
    for group, opts in config.list_opts():
        out += [f"## [{group}]", "", "| option | type | default | allowed | description |", "|---|---|---|---|---|"]
        for opt in opts:
            default = "unset" if opt.default is None else f"`{opt.default}`"
            out.append(f"| `{opt.dest}` | {OPT_TYPES.get(type(opt).__name__, type(opt).__name__)} | {default} | "
                       f"{_opt_allowed(opt)} | {_cell(opt.help or '')} |")
        out.append("")
    return "\n".join(out)


# ---- br1's pipeline, from its declarations -----------------------------------------------

def _tables() -> ModuleType:
    return module("controller.model.tables", "controller.tables")


def pipeline() -> str:
    tables = _tables()
    out = ["| table | name | role | may go on to |", "|---:|---|---|---|"]
    for t in tables.PIPELINE:
        nxt = ", ".join(f"{n} ({tables.BY_ID[n].name})" for n in t.next)
        out.append(f"| {t.id} | {t.name} | {_cell(t.role)} | {nxt} |")
    source = Path(tables.__file__).read_text()
    for prefix, title in (("PRIO_", "Priorities"), ("METER_", "Meters")):
        out += ["", f"**{title}**", "", "| name | value | what |", "|---|---:|---|"]
        for name, value, comment in re.findall(rf"^({prefix}\w+) = (\d+)\s*# (.*)$", source, re.M):
            out.append(f"| `{name}` | {value} | {_cell(comment)} |")
    return "\n".join(out)


def check_tables(markdown: str) -> None:
    """A hand-written table row `| id | name | ...` must name the table as the code does."""
    by_id = _tables().BY_ID
    for tid, name in re.findall(r"^\| (\d+) \| ([\w-]+) \|", markdown, re.M):
        declared = by_id[int(tid)].name if int(tid) in by_id else None
        if declared != name:
            raise ValueError(f"the docs call table {tid} '{name}'; the pipeline declares {declared or 'no such table'}")


GENERATORS = {"openapi": openapi, "options": options, "pipeline": pipeline}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- generate: pipeline -->" in markdown:
        check_tables(markdown)
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)

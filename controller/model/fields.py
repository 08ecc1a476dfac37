"""Request bodies declared once: every field's check and its OpenAPI 3.0 schema come from the same
declaration, so what the REST API accepts and what /v1/openapi.json says cannot drift apart.

controller/model/tenant_rules.py declares the tenant's fields, controller/northbound/pathtrace.py
the trace request's; controller/northbound/openapi.py takes their schemas and only adds words
(descriptions, examples). The few rules a schema cannot state (a 'vlans' override only for a host
in 'hosts', a map's key pattern: OpenAPI 3.0 has no propertyNames) are checked in code after the
declared shape, and said in the description.

A failed check raises Invalid, whose message names the field and what it must be
("'vni' must be an integer from 1 to 16777215").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class Invalid(ValueError):
    """A value that does not fit its declaration; str() names the field and what was expected."""


class Field:
    """One value of a body: says what it must be, checks a value, gives its schema."""

    says: str

    def check(self, value: Any, where: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict:
        raise NotImplementedError

    def refuse(self, where: str) -> Invalid:
        return Invalid(f"'{where}' must be {self.says}")


@dataclass(frozen=True)
class Int(Field):
    lo: int
    hi: int

    @property
    def says(self) -> str:
        return f"an integer from {self.lo} to {self.hi}"

    def check(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise self.refuse(where)
        return value

    def schema(self) -> dict:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True)
class Text(Field):
    """A non-empty string; with a pattern, the whole string must match it."""

    says: str
    pattern: re.Pattern | None = None

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value or (self.pattern and not self.pattern.fullmatch(value)):
            raise self.refuse(where)
        return value

    def schema(self) -> dict:
        if self.pattern is None:
            return {"type": "string", "minLength": 1}
        return {"type": "string", "pattern": f"^{self.pattern.pattern}$"}  # fullmatch: an OpenAPI pattern searches


@dataclass(frozen=True)
class Bool(Field):
    says: str = "true or false"

    def check(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.refuse(where)
        return value

    def schema(self) -> dict:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Nullable(Field):
    inner: Field

    @property
    def says(self) -> str:
        return f"null or {self.inner.says}"

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)

    def schema(self) -> dict:
        return {**self.inner.schema(), "nullable": True}


@dataclass(frozen=True)
class ListOf(Field):
    item: Field

    @property
    def says(self) -> str:
        return f"a list, each {self.item.says}"

    def check(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.refuse(where)
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def schema(self) -> dict:
        return {"type": "array", "items": self.item.schema()}


@dataclass(frozen=True)
class MapOf(Field):
    key: Text
    value: Field

    @property
    def says(self) -> str:
        return f"an object mapping {self.key.says} to {self.value.says}"

    def check(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.refuse(where)
        for k, v in value.items():
            if not isinstance(k, str) or not k or (self.key.pattern and not self.key.pattern.fullmatch(k)):
                raise Invalid(f"each key of '{where}' must be {self.key.says}")
            self.value.check(v, f"{where}.{k}")
        return value

    def schema(self) -> dict:
        return {"type": "object", "additionalProperties": self.value.schema()}


def _patched(field: Field) -> Field:
    """An optional field in a merge patch: null removes it; in a map, a null value drops that key."""
    inner = field.inner if isinstance(field, Nullable) else field
    if isinstance(inner, MapOf) and not isinstance(inner.value, Nullable):
        inner = MapOf(inner.key, Nullable(inner.value))
    return Nullable(inner)


@dataclass(frozen=True)
class Record:
    """A JSON object: these fields and no other, the required ones present."""

    fields: dict[str, Field]
    required: tuple[str, ...]

    def check(self, doc: Any) -> dict:
        if not isinstance(doc, dict):
            raise Invalid("body must be a JSON object")
        unknown = set(doc) - set(self.fields)  # also one set to null: a merge patch's null is no excuse
        if unknown:
            raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        for key, field in self.fields.items():
            if key in doc:
                field.check(doc[key], key)
            elif key in self.required:
                raise Invalid(f"'{key}' is required: {field.says}")
        return doc

    def schema(self) -> dict:
        out: dict[str, Any] = {"type": "object"}
        if self.required:
            out["required"] = list(self.required)
        return {**out, "additionalProperties": False,
                "properties": {k: f.schema() for k, f in self.fields.items()}}

    def requiring(self, *keys: str) -> Record:
        return Record(self.fields, keys)

    def merge_patch(self) -> Record:
        """An RFC 7386 merge patch of this record: nothing required; an optional field may be null
        (removed), a required one may not (it cannot be removed)."""
        return Record({k: f if k in self.required else _patched(f) for k, f in self.fields.items()}, ())

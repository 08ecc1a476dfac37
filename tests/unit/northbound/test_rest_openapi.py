"""The OpenAPI description is true to the code: every route is described, nothing else is."""

import re

import openapi_spec_validator
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator

from controller.model import tenant_rules as rules
from controller.northbound import openapi, pathtrace, rest
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def route_template(pattern: re.Pattern) -> str:
    """'^/v1/tenants/(?P<name>[^/]+)$' -> '/v1/tenants/{name}'."""
    text = pattern.pattern.removeprefix("^").removesuffix("$")
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
    return text.replace("\\.", ".")


def routes() -> list[tuple[str, re.Pattern]]:
    """Every (method, pattern) the API answers: HEAD wherever GET works."""
    out = [(m, p) for m, p, _ in rest.ROUTES]
    return out + [("HEAD", p) for m, p in out if m == "GET"]


def test_every_route_is_described_and_nothing_else():
    from_code = {(m.lower(), route_template(p)) for m, p in routes()}
    from_spec = {(m, path) for path, item in openapi.SPEC["paths"].items() for m in item if m in METHODS}
    assert from_code - from_spec == set(), "routes missing from the OpenAPI description"
    assert from_spec - from_code == set(), "described operations the API does not have"


def test_path_parameters_match_the_route_groups():
    for method, pattern in routes():
        op = openapi.SPEC["paths"][route_template(pattern)][method.lower()]
        described = [openapi.SPEC["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                     for p in op.get("parameters", [])]
        params = {p["name"] for p in described if p["in"] == "path"}
        assert params == set(pattern.groupindex), (method, pattern.pattern)


def test_public_routes_are_the_ones_described_without_security():
    described_public = {op["operationId"] for item in openapi.SPEC["paths"].values()
                        for m, op in item.items() if m in METHODS and op.get("security") == []}
    public = {"health", "openapi", "web_page", "web_asset"}  # the web page's code holds no data
    assert described_public == public | {f"{op}Head" for op in public}  # HEAD wherever GET works
    assert set(rest.PUBLIC) == public


def test_the_description_is_valid_openapi_and_served_as_is(tmp_path):
    schema = schemathesis.openapi.from_dict(openapi.SPEC)
    assert len(list(schema.get_all_operations())) == len(routes())
    status, served = call(Api(Backend(str(tmp_path / "o.db"))), "GET", "/v1/openapi.json")
    assert status == 200 and served == openapi.SPEC


def test_the_document_is_valid_openapi_3_0_3(tmp_path):
    """As served (after JSON): openapi-spec-validator, the validator openapi-core and others use (#22.5)."""
    status, served = call(Api(Backend(str(tmp_path / "o.db"))), "GET", "/v1/openapi.json")
    assert served["openapi"] == "3.0.3"
    openapi_spec_validator.validate(served)  # raises, naming the first fault (3.1's type lists were one)


def words_off(schema: dict) -> dict:
    """A schema without the words openapi.py adds (descriptions, examples, defaults)."""
    if not isinstance(schema, dict):
        return schema
    return {k: words_off(v) if k != "properties" else {p: words_off(s) for p, s in v.items()}
            for k, v in schema.items() if k not in ("description", "example", "default")}


@pytest.mark.parametrize("name, record", [
    ("Tenant", rules.TENANT.requiring(*rules.FIELDS)), ("TenantCreate", rules.TENANT),
    ("TenantReplace", rules.TENANT_REPLACE), ("TenantPatch", rules.TENANT_PATCH),
    ("TraceRequest", pathtrace.TRACE_REQUEST)])
def test_request_schemas_are_the_declarations_the_api_checks_with(name, record):
    assert words_off(openapi.SCHEMAS[name]) == record.schema()


# Values from small pools, valid and not, for the fields the API knows and some it does not.
FIELD_VALUES = st.sampled_from([
    0, 1, 5, 4094, 4095, 16777215, 16777216, -1, True, 1.5, 5.0, None, "blue", "x y", "", "h1", "a/b",
    [], ["h1"], ["h1", "h2"], ["a/b"], [1], [None], {}, {"h1": 10}, {"h1": None}, {"h2": 3}, {"": 3},
    {"h1": 4095}, {"h1": "x"}])
BODIES = st.one_of(st.dictionaries(st.sampled_from([*rules.FIELDS, "host", "colour"]), FIELD_VALUES, max_size=6),
                   FIELD_VALUES)


def unsaid_rules_hold(doc, url_name: str | None, whole: bool) -> bool:
    """The rules the schemas say only in words: the name is the URL's, a 'vlans' key is a host id
    (OpenAPI 3.0 has no propertyNames) and, in a whole tenant, one of its 'hosts'."""
    if not isinstance(doc, dict):
        return True
    vlans = doc["vlans"] if isinstance(doc.get("vlans"), dict) else {}
    hosts = doc["hosts"] if isinstance(doc.get("hosts"), list) else None
    return (all(k and "/" not in k for k in vlans) and doc.get("name", url_name) == url_name
            and not (whole and hosts is not None and not set(vlans) <= set(hosts)))


def accepted(check, *args) -> bool:
    try:
        check(*args)
    except rules.Invalid:
        return False
    return True


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(BODIES)
def test_the_api_accepts_exactly_what_its_schemas_accept(doc):
    """Checked from the other side, with openapi-schema-validator: a body its schema allows is taken,
    one it refuses is a 400 (#22.5), e.g. a PATCH of {"host": null} (#22.6)."""
    url_name = doc.get("name") if isinstance(doc, dict) else None
    for schema, check, url, whole in (("TenantCreate", rules.tenant_from_json, None, True),
                                      ("TenantReplace", rules.tenant_from_json, "blue", True),
                                      ("TenantPatch", rules.patch_from_json, "blue", False)):
        if unsaid_rules_hold(doc, url or url_name, whole):
            args = (doc,) if url is None else (doc, url)
            assert accepted(check, *args) == OAS30Validator(openapi.SCHEMAS[schema]).is_valid(doc), schema


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.one_of(st.dictionaries(st.sampled_from(["tenant", "src", "dst", "arp", "via"]),
                                 st.sampled_from(["blue", "", "x y", "10.0.0.1", "02:00:00:00:00:01", "fe80::1",
                                                  True, 1, None, []]), max_size=5), st.just([])))
def test_the_tracer_accepts_exactly_what_its_schema_accepts(doc):
    if isinstance(doc, dict) and any(doc.get(k) in ("blue", "x y") for k in ("src", "dst")):
        return  # a MAC or an IP: said in words
    if isinstance(doc, dict) and doc.get("arp") is True and doc.get("dst") != "10.0.0.1":
        return  # an ARP trace asks for an IPv4 address: a rule between two fields
    try:
        pathtrace.request_from_json(doc)
        ok = True
    except pathtrace.TraceError:
        ok = False
    assert ok == OAS30Validator(openapi.SCHEMAS["TraceRequest"]).is_valid(doc)

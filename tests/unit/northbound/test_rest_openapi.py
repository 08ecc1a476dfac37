"""The OpenAPI description is true to the code: every route is described, nothing else is."""

import re

import schemathesis

from controller.model import tenant_rules as tenants
from controller.northbound import openapi, rest
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


def test_schemas_agree_with_the_validation_limits():
    props = openapi.SCHEMAS["Tenant"]["properties"]
    assert props["vni"]["maximum"] == tenants.VNI_MAX and props["vlan"]["maximum"] == tenants.VLAN_MAX
    assert props["name"]["pattern"] == f"^{tenants.NAME_RE.pattern}$"
    assert openapi.HOST_PATTERN == f"^{tenants.HOST_RE.pattern}$"

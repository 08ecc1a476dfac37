"""Property-based fuzz of the whole API from its own OpenAPI description (schemathesis, in-process WSGI).

Every generated request, valid or not: no 5xx, a documented status, content type and body, the
token enforced where the description says so, and a rejected request (4xx) changes nothing.
Bounded and derandomized, so CI sees the same run every time.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from controller.northbound import openapi
from controller.northbound.auth import TokenAuth
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, seeded, state

TOKEN = "fuzz-token-0123456789"


class Bearer:
    """The right token on every generated request; schemathesis itself probes without it / with a wrong one."""

    def get(self, case, ctx):
        return TOKEN

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def api(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    return seeded(Api(Backend(str(tmp_path / "fuzz.db")), TokenAuth(str(token_file))))


class Current:
    """The WSGI app schemathesis calls (and probes): forwards to this test's Api."""

    api: Api | None = None

    def __call__(self, environ, start_response):
        assert self.api is not None
        return self.api(environ, start_response)


CURRENT = Current()
schema = schemathesis.openapi.from_dict(openapi.SPEC)  # the same document /v1/openapi.json serves
schema.app = CURRENT
schema.auth()(Bearer)  # registered for every test of this schema


@pytest.fixture
def current(api):
    CURRENT.api = api
    yield api
    CURRENT.api = None


@schema.parametrize()
@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_fuzz(current, case):
    api = current
    before = state(api)
    response = case.call()
    # Not positive_data_acceptance: some rules JSON Schema cannot say (a 'vlans' override only for a
    # host in 'hosts') rightly turn a schema-valid body into a 400; conflicts are documented 409s.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert state(api) == before, f"{case.method} {case.formatted_path} -> {response.status_code} changed state"

"""Property-based fuzzing of the OpenAPI schema (schemathesis, in-process, no broker).

Every operation gets schema-valid and schema-violating requests. Whatever comes
in, the answer is never a 5xx, a refused input is a 4xx whose message leads
with the field it is about, and every schemathesis check holds (status codes,
content types, headers and bodies as documented, schema-violating data refused,
405 with a full Allow header) except one: "schema-valid data is accepted". A
SearchSpec can be valid and still refused on principle with a 400 and the reason
(an unknown device, a budget no recipe meets, a field the server chooses, a
limit of this server), which no JSON schema can express. Deterministic
(derandomized Hypothesis); about 1,200 requests, so marked slow.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.db import migrate
from service.main import create_app
from tests.service.conftest import TINY, make_settings

# per operation and generation mode; POST /search, the door for user input, gets the most
EXAMPLES = {"POST /search": 300}
DEFAULT_EXAMPLES = 60
MIN_REQUESTS = 1000
# a schema error leads with where it is ("body.budget.max_latency: ..."); a refusal with the field ("model: ...")
SCHEMA_ERROR = re.compile(r"^(body|query|path|header|cookie)\b.*?: \S")
REFUSAL = re.compile(r"^\w+: \S")


@pytest.mark.slow
def test_fuzzed_requests_never_5xx_and_refusals_name_the_field(tmp_path):
    app = create_app(make_settings(tmp_path))
    migrate(app.state.services.engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls: Counter[str] = Counter()  # requests per operation
    outcomes: Counter[str] = Counter()  # per "operation status"
    problems: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            _fuzz(operation, mode, calls, outcomes, problems)

    total = sum(calls.values())
    assert total >= MIN_REQUESTS, calls
    assert not problems, "\n".join(problems[:10])
    print(f"{total} fuzzed requests:", dict(sorted(outcomes.items())))
    # the fuzzer did reach the interesting places: accepted submissions and each kind of refusal
    assert calls["POST /search"] >= 400
    assert outcomes["POST /search 202"] and outcomes["POST /search 400"] and outcomes["POST /search 422"], outcomes


def _fuzz(operation, mode, calls: Counter[str], outcomes: Counter[str], problems: list[str]) -> None:
    label = operation.label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES.get(label, DEFAULT_EXAMPLES), derandomize=True, deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call()
        calls[label] += 1
        outcomes[f"{label} {response.status_code}"] += 1
        problem = _judge(response)
        try:
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
        except BaseExceptionGroup as exc:  # schemathesis' FailureGroup: the checks that failed
            problem = (problem or "") + f" check failed: {str(exc).strip()[:600]}"
        if problem:
            problems.append(f"{problem}: {case.as_curl_command()}")

    try:
        run()
    except Unsatisfiable:
        # GET /devices and /healthz take no input: there is nothing to violate
        assert mode == schemathesis.GenerationMode.NEGATIVE, label


def _judge(response) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{status} {response.text[:200]}"
    if status < 400:
        return None
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"{status} without a JSON body"
    if not isinstance(detail, str) or not detail:
        return f"{status} without a message"
    if (status == 422 and not SCHEMA_ERROR.match(detail)) or (status == 400 and not REFUSAL.match(detail)):
        return f"{status} message does not name the field: {detail!r}"
    return None


def test_a_valid_example_is_accepted(tmp_path):
    """The OpenAPI example of POST /search is a real, accepted request (not just a shape)."""
    from fastapi.testclient import TestClient

    with TestClient(create_app(make_settings(tmp_path))) as client:
        example = client.get("/openapi.json").json()["paths"]["/search"]["post"]["requestBody"]["content"][
            "application/json"]["examples"]["minilm-on-rpi5"]["value"]
        assert client.post("/search", json=example).status_code == 202
        assert client.post("/search", json=TINY).status_code == 202

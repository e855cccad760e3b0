"""Property-based API testing: schemathesis generates requests from /openapi.json and checks
that the gateway never answers 5xx and always answers as its schema says (with a valid token;
at least 1,000 requests in all, bounded by ``max_examples`` per operation)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from taskloom.gateway.config import GatewaySettings
from taskloom.gateway.security import mint_token

EXAMPLES_PER_OPERATION = 90
# Business rules that JSON Schema cannot state (no blank requirement texts, callback URLs that
# resolve to public hosts, no client-set owner) rightly answer 422 to "schema-valid" data.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


def test_api_conforms_to_its_schema(gateway_url, context_service):
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    if not context_service:
        # without the context service the context routes can only answer 503 (correctly)
        schema = schema.exclude(path_regex="^/api/v1/context/")
    headers = {"Authorization": "Bearer " + mint_token(GatewaySettings(), "fuzzer", ["developer"], 3600)}
    sent = {"requests": 0}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= (14 if context_service else 12)

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            sent["requests"] += 1
            case.call_and_validate(headers=headers, timeout=10, excluded_checks=EXCLUDED)

        check()
    assert sent["requests"] >= 1000, sent

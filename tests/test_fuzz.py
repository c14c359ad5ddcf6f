"""Fuzzing: schemathesis generates requests from /api/openapi.json (with a valid token)
and checks every answer against the document; hypothesis throws values at the
registry's argument validation. No 5xx, no undocumented answer."""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobs.registry import registry
from tests.conftest import AUTH

EXAMPLES_PER_OPERATION = 70  # 19 operations: about 1,300 generated requests per run


def test_every_generated_request_gets_a_documented_answer(app: Flask):
    app.config["SUBMIT_RATE_LIMIT"] = "100000/second"
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    sent = 0
    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def answer_is_documented(case: schemathesis.Case) -> None:
            # Schema-valid is not always acceptable: depends_on must name real jobs, an
            # upload must hold a file. Those answers are documented 4xx problems.
            nonlocal sent
            sent += 1
            case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])

        answer_is_documented()
    print(f"{sent} generated requests over {len(operations)} operations")
    assert sent >= 1000


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("name", [task.name for task in registry.all()])
@settings(max_examples=150, deadline=None)
@given(args=st.dictionaries(st.text(max_size=12), JSON, max_size=5))
def test_argument_validation_accepts_or_refuses_cleanly(name: str, args: dict):
    task = registry.lookup(name)
    try:
        stored = task.to_json_args(args)
    except ValidationError as error:
        assert all(item["loc"] is not None and item["msg"] for item in error.errors())
        return
    assert set(stored) <= set(task.args_model.model_fields)
    assert task.to_json_args(stored) == stored  # what is stored validates again in the worker

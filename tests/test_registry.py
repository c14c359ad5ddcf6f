"""The task registry: type hints become the argument schema, one source for everything."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs.registry import RetryPolicy, TaskDefinitionError, UnknownTaskError, registry, task, task_of
from tests import fixtures


def test_default_name_is_module_and_function_without_the_tasks_package():
    assert registry.lookup("demo.sleep").func_path == "jobs.tasks.demo.sleep"
    assert task_of(fixtures.add).name == "tests.fixtures.add"


def test_description_is_the_first_paragraph_of_the_docstring():
    assert registry.lookup("demo.sleep").description == "Sleep for a while in steps, reporting progress after each one."


def test_schema_comes_from_type_hints_with_bounds_enums_and_nested_models():
    schema = task_of(fixtures.describe).schema()
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["name"] == {"maxLength": 20, "minLength": 1, "title": "Name", "type": "string"}
    assert schema["properties"]["color"]["enum"] == ["red", "green"]
    assert schema["properties"]["color"]["default"] == "red"
    assert "Point" in schema["$defs"]
    sleep_schema = registry.lookup("demo.sleep").schema()
    assert sleep_schema["properties"]["seconds"]["minimum"] == 0
    assert sleep_schema["properties"]["steps"]["type"] == "integer"


def test_validate_coerces_json_values_to_the_declared_types():
    values = task_of(fixtures.describe).validate({"name": "a", "where": {"x": "1", "y": 2}})
    assert isinstance(values["where"], fixtures.Point)
    assert values["where"].x == 1
    assert values["tags"] is None


def test_validate_reports_each_bad_field_with_its_location():
    with pytest.raises(ValidationError) as caught:
        task_of(fixtures.describe).validate({"name": "", "color": "blue", "extra": 1})
    locations = sorted(tuple(error["loc"]) for error in caught.value.errors())
    assert locations == [("color",), ("extra",), ("name",)]


def test_a_parameter_without_a_type_hint_is_refused_with_its_name():
    with pytest.raises(TaskDefinitionError, match="'b' needs a type hint"):

        @task
        def untyped(a: int, b):  # noqa: ANN001
            return a


def test_star_args_and_unknown_queues_are_refused():
    with pytest.raises(TaskDefinitionError, match="ordinary or keyword-only"):

        @task
        def variadic(*values: int) -> None:
            pass

    with pytest.raises(TaskDefinitionError, match="queue must be one of"):

        @task(queue="urgent")
        def misplaced() -> None:
            pass


def test_two_functions_cannot_share_a_task_name():
    with pytest.raises(TaskDefinitionError, match="is used by both"):

        @task(name="demo.sleep")
        def impostor() -> None:
            pass


def test_unknown_names_raise_unknown_task_error():
    with pytest.raises(UnknownTaskError):
        registry.lookup("os.system")
    with pytest.raises(UnknownTaskError):
        registry.lookup_path("os.system")


def test_retry_policy_uses_explicit_intervals_or_exponential_backoff_with_jitter():
    assert RetryPolicy(max_retries=3, intervals=(1, 5, 30)).delays() == [1, 5, 30]
    delays = RetryPolicy(max_retries=4, backoff=10, jitter=0.5).delays()
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        base = 10 * 2**attempt
        assert base * 0.5 - 1 <= delay <= base * 1.5 + 1
    assert RetryPolicy(max_retries=4, backoff=10, jitter=0).delays() == [10, 20, 40, 80]

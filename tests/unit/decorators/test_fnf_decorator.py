"""``@task.fnf_callback`` as a DAG author meets it at parse time (running it is in
tests/integration/operators/test_fnf_callback_decorator.py and tests/e2e/test_e2e_fnf_callback.py)."""

from __future__ import annotations

import re
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_provider_fnf.decorators.fnf import ServerlessWorkflowCallbackDecoratedOperator, fnf_callback_task
from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.get_provider_info import get_provider_info

START = pendulum.datetime(2024, 1, 1, tz="UTC")


def test_airflow_finds_the_decorator_under_task_through_the_provider_info():
    [entry] = get_provider_info()["task-decorators"]
    assert entry == {
        "name": "fnf_callback",
        "class-name": "airflow_provider_fnf.decorators.fnf.fnf_callback_task",
    }
    assert task.fnf_callback is fnf_callback_task


def test_a_decorated_function_becomes_one_callback_task_with_its_settings():
    with DAG("d", schedule=None, start_date=START) as dag:

        @task.fnf_callback(error="Orders.Failed", error_names={"KeyError": "Orders.Missing"}, retries=2)
        def work(message: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True}

        work()
    [operator] = dag.tasks
    assert isinstance(operator, ServerlessWorkflowCallbackDecoratedOperator)
    assert (operator.task_id, operator.error, operator.error_names, operator.retries) == (
        "work",
        "Orders.Failed",
        {"KeyError": "Orders.Missing"},
        2,
    )
    assert operator.op_kwargs == {"message": None}  # filled in with the run's message
    assert operator.show_return_value_in_logs is False


def test_a_function_without_a_message_argument_gets_none():
    with DAG("d", schedule=None, start_date=START) as dag:

        @task.fnf_callback
        def work() -> dict[str, Any]:
            return {}

        work()
    assert dag.tasks[0].op_kwargs == {}


@pytest.mark.parametrize(
    ("arguments", "named"),
    [({"error": ""}, "Task work"), ({"error_names": {"ValueError": "x" * 129}}, "error_names['ValueError']")],
)
def test_an_error_name_the_service_would_refuse_fails_the_dag_at_parse_time(arguments, named):
    with (
        DAG("d", schedule=None, start_date=START),
        pytest.raises(FnFConfigurationError, match=re.escape(named)),
    ):

        @task.fnf_callback(**arguments)
        def work(message: dict[str, Any]) -> dict[str, Any]:
            return {}

        work()

"""AirflowAPIHook against the shared stack's real API server: what a wrong connection gets."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from airflow_provider_fnf.hooks.airflow_api import AirflowAPIError, AirflowAPIHook
from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def hook(stack: LocalStack, password: str) -> AirflowAPIHook:
    conn = {"conn_type": "http", "host": stack.airflow_url, "login": "admin", "password": password}
    with mock.patch.dict("os.environ", {"AIRFLOW_CONN_AIRFLOW_API_E2E": json.dumps(conn)}):
        api = AirflowAPIHook("airflow_api_e2e")
        _ = api.settings
    return api


def test_a_wrong_password_is_named_with_the_connection(stack: LocalStack) -> None:
    with pytest.raises(AirflowAPIError, match="check its login and password") as error:
        hook(stack, "not-the-password").dag_run_state("fnf_one_task_worker", "mns__q__none")
    assert "airflow_api_e2e" in str(error.value) and error.value.status == 401
    assert "not-the-password" not in str(error.value)


def test_an_unknown_dag_or_run_is_an_error_naming_the_call(stack: LocalStack) -> None:
    api = hook(stack, stack.admin_password)
    with pytest.raises(AirflowAPIError, match="HTTP 404") as error:
        api.trigger_dag_run("no_such_dag", "mns__q__M1", {"message_id": "M1"}, None)
    assert "/api/v2/dags/no_such_dag/dagRuns" in str(error.value)
    with pytest.raises(AirflowAPIError, match="HTTP 404"):
        api.dag_run_state("fnf_one_task_worker", "mns__q__no-such-run")

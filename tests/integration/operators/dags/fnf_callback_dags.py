"""``@task.fnf_callback`` DAGs for tests/integration/operators/test_fnf_callback_decorator.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task

with DAG(
    dag_id="fnf_callback_retried",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
) as retried:

    @task.fnf_callback
    def flaky(message: dict[str, Any], ti: Any = None) -> dict[str, Any]:
        """Fails on its first try, succeeds on the second: only the second try reports."""
        if ti.try_number == 1:
            raise ConnectionError("the warehouse hung up")
        return {"order": message["body"]["order"], "try": ti.try_number}

    flaky()

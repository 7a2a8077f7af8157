"""record_task_error: what a failed task leaves for the report (type names, a message without the token)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_fnf.callbacks import make_report_task_failed_callback, record_task_error
from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.reporting import TASK_ERROR_XCOM_KEY, FailedTask, error_name_for


class RecordingTI:
    task_id = "load"

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_records_types_and_message_without_token():
    ti = RecordingTI()
    token = "djEjZmxvdyNleGVjIzEjc2ln"
    conf = {"task_token": token}
    error = ConnectionResetError(f"peer reset while sending TaskToken={token}&x=1 for {token}")
    record_task_error({"ti": ti, "exception": error, "dag_run": SimpleNamespace(conf=conf)})
    record = ti.pushed[TASK_ERROR_XCOM_KEY]
    assert record["types"][:3] == ["ConnectionResetError", "ConnectionError", "OSError"]
    assert token not in record["message"]
    assert "peer reset" in record["message"]
    # what the report does with it
    failed = FailedTask("load", error_types=record["types"], error_message=record["message"])
    assert error_name_for([failed], default="D", error_names={"ConnectionError": "Airflow.Network"}) == (
        "Airflow.Network"
    )


def test_nothing_recorded_without_exception():
    ti = RecordingTI()
    record_task_error({"ti": ti, "exception": None})
    assert ti.pushed == {}


def test_callback_factory_checks_error_names():
    with pytest.raises(FnFConfigurationError):
        make_report_task_failed_callback(error="")
    with pytest.raises(FnFConfigurationError):
        make_report_task_failed_callback(error_names={"X": "y" * 200})
    assert callable(make_report_task_failed_callback(error="Worker.Died"))

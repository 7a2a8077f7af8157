"""MNSSendMessageOperator's checks before it sends anything."""

from __future__ import annotations

import pytest

from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.limits import MNS_MAX_MESSAGE_SIZE
from airflow_provider_fnf.operators.mns import MNSSendMessageOperator


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"priority": 0}, "priority must be within 1..16"),
        ({"priority": 17}, "priority must be within 1..16"),
        ({"priority": "high"}, "priority must be an integer"),
        ({"delay_seconds": -1}, "delay_seconds must be within 0..604800"),
        ({"delay_seconds": 604_801}, "delay_seconds must be within 0..604800"),
    ],
)
def test_out_of_range_arguments(kwargs, fragment):
    with pytest.raises(FnFConfigurationError, match=fragment):
        MNSSendMessageOperator(task_id="send", queue_name="q", message_body="x", **kwargs)


def test_templated_numbers_are_checked_later():
    op = MNSSendMessageOperator(task_id="send", queue_name="q", message_body="x", priority="{{ params.p }}")
    assert op.priority == "{{ params.p }}"


def test_body_encoding_and_size():
    op = MNSSendMessageOperator(task_id="send", queue_name="q", message_body={"a": "é", "b": [1]})
    assert op._body_text() == '{"a":"é","b":[1]}'
    op.message_body = "x" * (MNS_MAX_MESSAGE_SIZE + 1)
    with pytest.raises(FnFConfigurationError, match="queue q is 65537 bytes"):
        op._body_text()
    op.message_body = 12
    with pytest.raises(FnFConfigurationError, match="must be a string, a dict or a list"):
        op._body_text()

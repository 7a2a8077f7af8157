"""MNSReceiveSettings: one object for the sensor, the trigger and the receiver, validated in one
place, JSON for the trigger, every option a keyword argument where users write it."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_fnf.receive_settings import MNSReceiveSettings
from airflow_provider_fnf.sensors.mns import MNSSensor
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

OPTIONS = MNSReceiveSettings.option_names()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_messages": 17}, "max_messages"),
        ({"max_messages": 0}, "max_messages"),
        ({"wait_time_seconds": 31}, "wait_time_seconds"),
        ({"lease_seconds": 43_201}, "lease_seconds"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"lease_seconds": True}, "lease_seconds"),
        ({"token_keys": "task_token"}, "token_keys"),
        ({"token_keys": []}, "token_keys"),
        ({"message_filtering": "$.["}, "message_filtering for queue 'tasks': Invalid JSONPath"),
        ({"message_filtering": 42}, "message_filtering"),
        ({"max_receive_count": 0}, "max_receive_count"),
        ({"poison_policy": "explode"}, "poison_policy"),
        ({"poison_policy": "dead_letter"}, "dead_letter_queue_name"),
        ({"dead_letter_queue_name": "tasks"}, "must differ"),
        ({"poison_error_name": "E" * 129}, "poison_error_name"),
        ({"body_encoding": "rot13"}, "body_encoding"),
        ({"mns_conn_id": ""}, "mns_conn_id"),
        ({"queue_name": ""}, "queue_name"),
    ],
)
def test_bad_settings_are_rejected_naming_the_option_and_the_queue(kwargs, fragment):
    kwargs.setdefault("queue_name", "tasks")
    with pytest.raises(ValueError, match=fragment) as err:
        MNSReceiveSettings(**kwargs)
    if kwargs["queue_name"]:
        assert "'tasks'" in str(err.value)


def test_json_round_trip_of_every_option():
    settings = MNSReceiveSettings(
        queue_name="jobs",
        mns_conn_id="mns_x",
        token_keys=["cb_token", "task_token"],
        message_filtering="$.items[?(@.n > 1)].sku",
        message_filtering_match_values=["a", 3],
        max_receive_count=4,
        dead_letter_queue_name="jobs-dlq",
        body_encoding="auto",
    )
    data = json.loads(json.dumps(settings.to_json()))
    assert set(data) == OPTIONS
    assert MNSReceiveSettings(**data) == settings
    assert settings.token_keys == ("cb_token", "task_token")


def test_every_message_settles_by_default():
    settings = MNSReceiveSettings(queue_name="jobs")
    assert settings.max_receive_count == 10  # lease x 10 at most, see DEFAULT_MAX_RECEIVE_COUNT
    assert MNSMessageTrigger(queue_name="jobs").serialize()[1]["max_receive_count"] == 10
    assert MNSReceiveSettings(queue_name="jobs", max_receive_count=None).max_receive_count is None
    assert settings.settling_fields() == {
        "poison_policy": "leave",
        "dead_letter_queue_name": None,
        "body_encoding": "raw",
    }


def test_a_callable_filter_is_never_serialized():
    settings = MNSReceiveSettings(
        queue_name="jobs", message_filtering=lambda m: True, message_filtering_match_values=[1]
    )
    with pytest.raises(ValueError, match="callable message_filtering cannot be serialized"):
        settings.to_json()
    plain = settings.without_callable_filter()
    assert plain.message_filtering is None and plain.message_filtering_match_values is None
    assert plain.to_json()["queue_name"] == "jobs"


def test_an_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="lease_secnds"):
        MNSReceiveSettings(queue_name="jobs", lease_secnds=60)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="lease_secnds"):
        MNSMessageTrigger(queue_name="jobs", lease_secnds=60)
    with pytest.raises(TypeError, match="lease_secnds"):
        MNSSensor(task_id="wait", queue_name="jobs", lease_secnds=60)


@pytest.mark.parametrize("cls", [MNSSensor, MNSMessageTrigger])
def test_every_option_is_in_the_signature_of_the_sensor_and_the_trigger(cls):
    params = inspect.signature(cls.__init__).parameters
    assert OPTIONS <= set(params)
    for field in dataclasses.fields(MNSReceiveSettings):
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default, field.name


def test_trigger_options_are_its_own_and_the_settings():
    trigger = MNSMessageTrigger(queue_name="jobs", lease_seconds=60, poll_interval=2.0)
    assert trigger.settings == MNSReceiveSettings(queue_name="jobs", lease_seconds=60)
    _, kwargs = trigger.serialize()
    own = set(kwargs) - OPTIONS
    assert own == {"poll_interval", "max_backoff_seconds", "max_messages_per_event", "max_bytes_per_event"}


def test_a_bad_jsonpath_fails_when_the_dag_is_parsed_naming_the_sensor():
    with pytest.raises(
        ValueError, match=r"MNSSensor wait_for_orders: message_filtering for queue 'orders': Invalid JSONPath"
    ):
        MNSSensor(task_id="wait_for_orders", queue_name="orders", message_filtering="$.items[?(@.n >)]")


def test_default_args_and_partial_reach_the_options():
    with DAG("unit_settings_defaults", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
             default_args={"mns_conn_id": "mns_team", "lease_seconds": 120}):  # fmt: skip
        sensor = MNSSensor(task_id="wait", queue_name="jobs")
        mapped = MNSSensor.partial(task_id="wait_each", lease_seconds=60, mode="reschedule").expand(
            queue_name=["a", "b"]
        )
    assert sensor.receive_settings.mns_conn_id == "mns_team"
    assert sensor.receive_settings.lease_seconds == 120
    assert type(mapped).__name__ == "MappedOperator"


def test_rendered_templated_options_reach_the_settings():
    sensor = MNSSensor(
        task_id="wait", queue_name="{{ params.queue }}", dead_letter_queue_name="{{ params.dlq }}"
    )
    sensor.queue_name, sensor.dead_letter_queue_name = "jobs", "jobs-dlq"  # as rendering sets them
    assert (sensor.settings.queue_name, sensor.settings.dead_letter_queue_name) == ("jobs", "jobs-dlq")
    assert sensor.settings.effective_poison_policy == "dead_letter"

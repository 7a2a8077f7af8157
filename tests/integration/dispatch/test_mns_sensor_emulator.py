"""MNSSensor (poke and deferrable) and MNSDispatchMessagesOperator's settling with the real SDKs
over HTTP against the emulator."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import TaskDeferred
from dispatch_it_support import FNF_CONN_ID, MNS_CONN_ID

from airflow_provider_fnf.messages import run_id_for
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.sensors.mns import MNSSensor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def sensor_for(flow, **kwargs) -> MNSSensor:
    kwargs.setdefault("wait_time_seconds", 2)
    return MNSSensor(
        task_id="wait_for_tasks",
        queue_name=flow.queue_name,
        mns_conn_id=MNS_CONN_ID,
        fnf_conn_id=FNF_CONN_ID,
        **kwargs,
    )


def run_trigger(trigger, limit: float = 30):
    async def collect():
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(asyncio.wait_for(collect(), limit))
    return event.payload


def test_poke_mode_pushes_parsed_leased_messages(flow):
    executions = {flow.start(), flow.start()}
    flow.wait_visible(2)
    sensor = sensor_for(flow, deferrable=False)

    value = sensor.poke({})

    assert isinstance(value, PokeReturnValue) and value.is_done
    messages = value.xcom_value
    json.dumps(messages)
    assert {m["execution_name"] for m in messages} == executions
    assert all(m["queue_name"] == flow.queue_name and m["task_token"] for m in messages)
    assert flow.counts() == (0, 2)


def test_poke_mode_on_an_empty_queue_keeps_waiting(flow):
    assert sensor_for(flow, wait_time_seconds=1).poke({}) is False


def test_deferrable_mode_defers_then_resumes_with_the_trigger_event(flow):
    sensor = sensor_for(flow, deferrable=True, timeout=300)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    execution = flow.start()

    payload = run_trigger(deferred.value.trigger)
    messages = sensor.execute_complete({}, payload)

    assert [m["execution_name"] for m in messages] == [execution]


def test_deferrable_mode_returns_at_once_when_messages_wait(flow):
    flow.start()
    messages = sensor_for(flow, deferrable=True).execute({})
    assert len(messages) == 1


def test_a_callable_filter_releases_what_it_rejects_in_deferrable_mode(flow):
    sensor = sensor_for(flow, deferrable=True, message_filtering=lambda m: m["body"]["kind"] == "resize")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    flow.start(kind="crop")
    flow.start(kind="resize")
    payload = run_trigger(deferred.value.trigger)
    if len(payload["messages"]) == 1:  # the two may arrive in one batch or two
        payload["messages"] += run_trigger(deferred.value.trigger)["messages"]

    messages = sensor.execute_complete({}, payload)

    assert [m["body"]["kind"] for m in messages] == ["resize"]
    again = flow.mns.receive_messages(flow.queue_name, 16, wait_seconds=5)
    assert [json.loads(m.body)["kind"] for m in again] == ["crop"]


def test_delete_on_receipt_is_at_most_once(flow):
    flow.start()
    messages = sensor_for(flow, delete_on_receipt=True).poke({}).xcom_value
    assert messages[0]["receipt_handle"] is None
    assert flow.counts() == (0, 0)


class StateOnly:
    """Airflow's side for these tests: every run exists already in the given state."""

    def __init__(self, state):
        self.value = state

    def trigger_dag_run(self, dag_id, run_id, conf, note):
        return False

    def dag_run_state(self, dag_id, run_id):
        return self.value


def test_a_redelivered_message_of_a_succeeded_run_is_deleted(flow):
    flow.start()
    messages = sensor_for(flow).poke({}).xcom_value
    op = MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id="worker", messages=messages)
    op.dag_runs = StateOnly("success")

    summary = op.execute({})

    assert summary["deleted"] == [run_id_for(flow.queue_name, messages[0]["message_id"])]
    assert flow.counts() == (0, 0)


def test_a_redelivered_message_of_a_failed_run_reports_the_task_failed(flow):
    execution = flow.start()
    messages = sensor_for(flow).poke({}).xcom_value
    op = MNSDispatchMessagesOperator(
        task_id="dispatch", trigger_dag_id="worker", messages=messages, fnf_conn_id=FNF_CONN_ID
    )
    op.dag_runs = StateOnly("failed")

    summary = op.execute({})

    assert len(summary["reported_failed"]) == 1
    assert flow.status(execution, wait=10)["Status"] == "Failed"
    history = flow.fnf.get_execution_history(flow.flow_name, execution)
    assert "Airflow.DagRunFailed" in json.dumps([e for e in history if e["Type"] == "TaskFailed"])
    assert flow.counts() == (0, 0)


def test_a_redelivered_message_of_a_running_run_keeps_its_lease(flow):
    flow.start()
    messages = sensor_for(flow, lease_seconds=600).poke({}).xcom_value
    op = MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id="worker", messages=messages)
    op.dag_runs = StateOnly("running")

    assert len(op.execute({})["running"]) == 1
    assert flow.counts() == (0, 1)

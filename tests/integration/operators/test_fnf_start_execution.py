"""The reverse direction against the emulator: start a flow and wait for it (in the worker, or
deferred to ServerlessWorkflowExecutionTrigger), watch it with the sensor, send MNS messages."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_fnf.exceptions import ServerlessWorkflowExecutionFailedError
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowStartExecutionOperator
from airflow_provider_fnf.operators.mns import MNSSendMessageOperator
from airflow_provider_fnf.sensors.fnf import ServerlessWorkflowExecutionSensor
from airflow_provider_fnf.triggers.fnf import ServerlessWorkflowExecutionTrigger

pytestmark = pytest.mark.integration

PASS_FLOW = """
version: v1
type: flow
steps:
  - type: pass
    name: Greet
    inputMappings:
      - target: name
        source: $input.name
    outputMappings:
      - target: greeting
        source: $input.name
"""

FAIL_FLOW = """
version: v1
type: flow
steps:
  - type: fail
    name: Refuse
    error: Orders.Rejected
    cause: the order is on hold
"""


def in_dag(operator_class, **kwargs):
    with DAG(f"start_{uuid.uuid4().hex[:8]}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        return operator_class(**kwargs)


@pytest.fixture
def flows(callback_flow):
    suffix = uuid.uuid4().hex[:8]
    names = {"pass": f"greet-{suffix}", "fail": f"refuse-{suffix}"}
    callback_flow.fnf.create_or_update_flow(names["pass"], PASS_FLOW)
    callback_flow.fnf.create_or_update_flow(names["fail"], FAIL_FLOW)
    return names


def test_start_without_waiting_returns_the_execution_name(callback_flow, make_context, emulator):
    task = in_dag(
        ServerlessWorkflowStartExecutionOperator,
        task_id="start",
        flow_name=callback_flow.flow_name,
        execution_input={"order": 5},
        execution_name="from-airflow-1",
    )
    context = make_context(task, None)
    assert task.execute(context) == "from-airflow-1"
    assert context["ti"].xcom["execution_name"] == "from-airflow-1"
    link = context["ti"].xcom[task.operator_extra_links[0].xcom_key]
    assert (
        link == f"{emulator.fnf_endpoint}/console/flows/{callback_flow.flow_name}/executions/from-airflow-1"
    )
    # the flow really runs: its callback message carries the input
    assert callback_flow.receive()["body"]["order"] == 5
    # a retried task attaches to the execution its first try started
    assert task.execute(make_context(task, None)) == "from-airflow-1"


def test_wait_returns_the_parsed_output(flows, make_context):
    task = in_dag(
        ServerlessWorkflowStartExecutionOperator,
        task_id="start",
        flow_name=flows["pass"],
        execution_input='{"name": "Ada"}',
        wait_for_completion=True,
        deferrable=False,
        wait_time_seconds=5,
        poll_interval=0.1,
    )
    assert task.execute(make_context(task, None)) == {"greeting": "Ada"}


def test_wait_fails_with_the_execution_error_and_cause(flows, make_context):
    task = in_dag(
        ServerlessWorkflowStartExecutionOperator,
        task_id="start",
        flow_name=flows["fail"],
        wait_for_completion=True,
        deferrable=False,
        wait_time_seconds=5,
    )
    with pytest.raises(ServerlessWorkflowExecutionFailedError) as err:
        task.execute(make_context(task, None))
    assert "Orders.Rejected" in str(err.value) and "the order is on hold" in str(err.value)
    assert "Failed" in str(err.value)


def test_deferred_wait_is_resumed_by_the_trigger(callback_flow, make_context):
    task = in_dag(
        ServerlessWorkflowStartExecutionOperator,
        task_id="start",
        flow_name=callback_flow.flow_name,
        execution_input={"order": 9},
        wait_for_completion=True,
        deferrable=True,
        wait_time_seconds=2,
        poll_interval=0.1,
    )
    # the flow waits for a callback, so the operator defers
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context(task, None))
    trigger = deferred.value.trigger
    assert isinstance(trigger, ServerlessWorkflowExecutionTrigger)
    assert deferred.value.method_name == "execute_complete"
    # the triggerer rebuilds it from its serialized form
    classpath, kwargs = trigger.serialize()
    rebuilt = ServerlessWorkflowExecutionTrigger(**json.loads(json.dumps(kwargs)))

    message = callback_flow.receive()

    async def run_until_event():
        # the worker reports while the trigger long-polls; the loop must stay responsive
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        threading.Timer(
            0.5, callback_flow.fnf.report_task_succeeded, args=(message["task_token"], {"done": 9})
        ).start()
        events = [event async for event in rebuilt.run()]
        tick_task.cancel()
        return events, ticks

    events, ticks = asyncio.run(asyncio.wait_for(run_until_event(), timeout=30))
    assert len(events) == 1
    assert events[0].payload["status"] == "success"
    assert ticks > 5, "the event loop was blocked while the trigger waited"
    assert task.execute_complete(make_context(task, None), events[0].payload) == {"done": 9}


def test_trigger_reports_a_failed_execution(flows, callback_flow):
    execution = callback_flow.fnf.start_execution(flows["fail"], {}, "refused-1")
    trigger = ServerlessWorkflowExecutionTrigger(
        flow_name=flows["fail"], execution_name=execution["Name"], wait_time_seconds=5, poll_interval=0
    )

    async def first_event():
        return [event async for event in trigger.run()]

    events = asyncio.run(asyncio.wait_for(first_event(), timeout=30))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "failed"
    assert payload["execution_status"] == "Failed"
    assert (payload["error"], payload["cause"]) == ("Orders.Rejected", "the order is on hold")


def test_trigger_error_event_for_unknown_execution(callback_flow):
    trigger = ServerlessWorkflowExecutionTrigger(
        flow_name=callback_flow.flow_name, execution_name="never-started", wait_time_seconds=0
    )

    async def first_event():
        return [event async for event in trigger.run()]

    (event,) = asyncio.run(first_event())
    assert event.payload["status"] == "error"
    assert "never-started" in event.payload["message"]


def test_sensor_pokes_until_the_execution_ends(callback_flow, make_context):
    name, message = callback_flow.start_and_receive()
    sensor = in_dag(
        ServerlessWorkflowExecutionSensor,
        task_id="watch",
        flow_name=callback_flow.flow_name,
        execution_name=name,
        deferrable=False,
    )
    context = make_context(sensor, None)
    assert sensor.poke(context).is_done is False
    callback_flow.fnf.report_task_succeeded(message["task_token"], {"shipped": True})
    callback_flow.execution(name, wait=5)
    result = sensor.poke(context)
    assert result.is_done is True and result.xcom_value == {"shipped": True}


def test_sensor_fails_when_the_execution_fails(flows, callback_flow, make_context):
    callback_flow.fnf.start_execution(flows["fail"], {}, "refused-2")
    callback_flow.fnf.describe_execution(flows["fail"], "refused-2", 5)
    sensor = in_dag(
        ServerlessWorkflowExecutionSensor,
        task_id="watch",
        flow_name=flows["fail"],
        execution_name="refused-2",
        deferrable=True,
    )
    # deferrable: it pokes once before deferring, and the execution has already failed
    with pytest.raises(ServerlessWorkflowExecutionFailedError, match="Orders.Rejected"):
        sensor.execute(make_context(sensor, None))


def test_send_message(callback_flow, make_context):
    task = in_dag(
        MNSSendMessageOperator,
        task_id="send",
        queue_name=callback_flow.queue_name,
        message_body={"hello": "wörld"},
        priority=2,
    )
    message_id = task.execute(make_context(task, None))
    (received,) = callback_flow.mns.receive_messages(callback_flow.queue_name, 1, wait_seconds=5)
    assert received.message_id == message_id
    assert json.loads(received.body) == {"hello": "wörld"}
    assert received.priority == 2

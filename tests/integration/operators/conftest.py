"""Fixtures for the operator tests: the ``mns_default`` and ``fnf_default`` connections pointing at
the in-process emulator (``emulator``, from tests/conftest.py), and a flow whose step waits for our
callback."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from fnf_emulator.server import Emulator

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.messages import parse_message
from tests.support import admin, set_emulator_connections
from tests.support import callback_flow_definition as waiting_flow_definition

CALLBACK_FLOW = waiting_flow_definition("{queue}", input_key="order") + """\
    catch:
      - errors: [Airflow.TaskFailed]
        goto: Caught
  - type: pass
    name: Done
    end: true
  - type: pass
    name: Caught
"""
"""A flow whose only task waits for Airflow; a reported ``Airflow.TaskFailed`` is caught (the
execution then goes through ``Caught`` and succeeds), any other error fails the execution.
A template: ``.format(queue=...)``."""


@pytest.fixture
def connections(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``mns_default`` and ``fnf_default`` point at the module's emulator."""
    return set_emulator_connections(monkeypatch, emulator)


@dataclass
class CallbackFlow:
    """A flow with a callback step on its own queue, and helpers to drive it like a dispatch would."""

    flow_name: str
    queue_name: str
    fnf: ServerlessWorkflowHook
    mns: MNSHook
    executions: list[str] = field(default_factory=list)

    def start(self, order: int = 1) -> str:
        name = f"e-{uuid.uuid4().hex[:12]}"
        self.fnf.start_execution(self.flow_name, {"order": order}, name)
        self.executions.append(name)
        return name

    def receive(self) -> dict[str, Any]:
        """The next message, parsed as the dispatch writes a run's conf."""
        messages = self.mns.receive_messages(self.queue_name, 1, wait_seconds=10)
        assert messages, f"no message arrived on {self.queue_name}"
        return parse_message(messages[0], queue_name=self.queue_name, mns_conn_id="mns_default")

    def start_and_receive(self, order: int = 1) -> tuple[str, dict[str, Any]]:
        name = self.start(order)
        return name, self.receive()

    def execution(self, name: str, wait: int = 0) -> dict[str, Any]:
        return self.fnf.describe_execution(self.flow_name, name, wait)

    def steps_entered(self, name: str) -> list[str]:
        history = self.fnf.get_execution_history(self.flow_name, name)
        return [e["StepName"] for e in history if e["Type"] == "StepEntered"]

    def task_failure(self, name: str) -> dict[str, Any]:
        history = self.fnf.get_execution_history(self.flow_name, name)
        failed = [e for e in history if e["Type"] == "TaskFailed"]
        assert failed, f"no TaskFailed event in execution {name}"
        return json.loads(failed[-1]["EventDetail"])

    def messages_left(self) -> int:
        """Messages still in the queue, visible or not (a deleted one is gone for good)."""
        attributes = self.mns.get_queue_attributes(self.queue_name)
        return (
            attributes["active_messages"]
            + attributes["inactive_messages"]
            + attributes.get("delay_messages", 0)
        )


@pytest.fixture
def callback_flow(connections: dict[str, str]) -> CallbackFlow:
    suffix = uuid.uuid4().hex[:8]
    queue_name = f"work-{suffix}"
    flow_name = f"orders-{suffix}"
    mns = MNSHook()
    fnf = ServerlessWorkflowHook()
    mns.create_queue(queue_name)
    fnf.create_or_update_flow(flow_name, CALLBACK_FLOW.format(queue=queue_name))
    return CallbackFlow(flow_name=flow_name, queue_name=queue_name, fnf=fnf, mns=mns)


class RecordingTaskInstance:
    """Stands in for the running task instance in a minimal execute() context: records XCom."""

    def __init__(self, task_id: str, map_index: int = -1) -> None:
        self.task_id = task_id
        self.map_index = map_index
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def minimal_context(task: Any, conf: dict[str, Any] | None, run_id: str = "manual__test") -> dict[str, Any]:
    """The parts of a task's context the operators read."""
    return {
        "dag": task.dag,
        "run_id": run_id,
        "dag_run": SimpleNamespace(run_id=run_id, conf=conf or {}),
        "ti": RecordingTaskInstance(task.task_id),
        "logical_date": pendulum.now("UTC"),
    }


@pytest.fixture
def emulator_admin(emulator: Emulator):
    """``emulator_admin(method, path, payload)`` on the FnF port's admin API; faults are cleared after."""

    def call(method: str, path: str, payload: Any = None) -> Any:
        return admin(emulator.fnf_endpoint, method, path, payload)

    yield call
    admin(emulator.fnf_endpoint, "DELETE", "faults")


@pytest.fixture
def make_context():
    """``make_context(task, conf, run_id=...)``: a minimal execute() context."""
    return minimal_context


@pytest.fixture(scope="session")
def callback_flow_definition() -> str:
    """The FDL of :data:`CALLBACK_FLOW`, with a ``{queue}`` placeholder."""
    return CALLBACK_FLOW

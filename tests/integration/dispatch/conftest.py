"""The in-process emulator of both services, connections to it, and a flow whose step sends its
task token to an MNS queue and waits (what MNSMessageTrigger and MNSSensor read)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_fnf.emulator.server import Emulator
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook

ACCESS_KEY_ID = "emulator-access-key-id"
ACCESS_KEY_SECRET = "emulator-access-key-secret"
MNS_CONN_ID = "mns_dispatch_it"
FNF_CONN_ID = "fnf_dispatch_it"

WAITING_FLOW = """
version: v1
type: flow
steps:
  - type: task
    name: Work
    resourceArn: acs:mns:::/queues/{queue}/messages
    pattern: waitForCallback
    inputMappings:
      - target: task_token
        source: $context.task.token
      - target: kind
        source: $input.kind
    serviceParams:
      MessageBody: $
      Priority: 1
"""


def admin(endpoint: str, method: str, path: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{endpoint}/_emulator/{path}", data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET}) as running:
        yield running


@pytest.fixture
def connections(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = {"login": ACCESS_KEY_ID, "password": ACCESS_KEY_SECRET}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{MNS_CONN_ID.upper()}",
        json.dumps({"conn_type": "mns", **credentials, "extra": {"endpoint": emulator.mns_endpoint}}),
    )
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{FNF_CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "fnf",
                **credentials,
                "extra": {"endpoint": emulator.fnf_endpoint, "region": "cn-hangzhou"},
            }
        ),
    )
    yield
    admin(emulator.mns_endpoint, "DELETE", "faults")


@dataclass
class WaitingFlow:
    """A flow on its own queue (and dead-letter queue); each execution puts one task message there."""

    flow_name: str
    queue_name: str
    dead_letter_queue_name: str
    mns: MNSHook
    fnf: ServerlessWorkflowHook
    executions: list[str] = field(default_factory=list)

    def start(self, kind: str = "resize") -> str:
        name = f"e-{uuid.uuid4().hex[:12]}"
        self.fnf.start_execution(self.flow_name, {"kind": kind}, name)
        self.executions.append(name)
        return name

    def status(self, execution: str, wait: int = 0) -> dict[str, Any]:
        return self.fnf.describe_execution(self.flow_name, execution, wait)

    def counts(self, queue: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the queue."""
        attributes = self.mns.get_queue_attributes(queue or self.queue_name)
        return attributes["active_messages"], attributes["inactive_messages"]


@pytest.fixture
def flow(connections: None) -> WaitingFlow:
    suffix = uuid.uuid4().hex[:8]
    mns = MNSHook(MNS_CONN_ID)
    fnf = ServerlessWorkflowHook(FNF_CONN_ID)
    queue_name = f"tasks-{suffix}"
    mns.create_queue(queue_name)
    mns.create_queue(f"{queue_name}-dlq")
    flow_name = f"waiting-{suffix}"
    fnf.create_or_update_flow(flow_name, WAITING_FLOW.format(queue=queue_name))
    return WaitingFlow(flow_name, queue_name, f"{queue_name}-dlq", mns, fnf)

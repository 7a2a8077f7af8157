"""Constants and helpers for the dispatch integration tests (imported by conftest and tests);
what all suites share is in :mod:`tests.support`."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from tests.support import callback_flow_definition

MNS_CONN_ID = "mns_dispatch_it"
FNF_CONN_ID = "fnf_dispatch_it"

WAITING_FLOW = callback_flow_definition("{queue}", input_key="kind")
"""Template (``.format(queue=...)``) of a flow whose task step sends ``{task_token, kind}``."""


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

    def wait_visible(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` messages are visible: an execution sends its message from the
        emulator's engine thread, a moment after StartExecution returns."""
        deadline = time.monotonic() + timeout
        while self.counts()[0] < count:
            assert time.monotonic() < deadline, f"{count} messages did not arrive on {self.queue_name}"
            time.sleep(0.05)

    def counts(self, queue: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the queue."""
        attributes = self.mns.get_queue_attributes(queue or self.queue_name)
        return attributes["active_messages"], attributes["inactive_messages"]

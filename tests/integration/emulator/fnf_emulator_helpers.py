"""Helpers for the Serverless Workflow emulator's integration tests: unmodified SDK clients."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from alibabacloud_fnf20190315 import models as fnf_models
from alibabacloud_fnf20190315.client import Client
from alibabacloud_tea_openapi.models import Config
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.queue import Queue
from mns_emulator_helpers import make_queue


def fnf_client(
    endpoint: str, key_id: str = DEFAULT_ACCESS_KEY_ID, secret: str = DEFAULT_ACCESS_KEY_SECRET
) -> Client:
    host = endpoint.split("://", 1)[-1]
    return Client(
        Config(
            endpoint=host,
            protocol="http",
            access_key_id=key_id,
            access_key_secret=secret,
            region_id="cn-hangzhou",
            read_timeout=70_000,
        )
    )


def mns_queue(emulator: Emulator, name: str) -> Queue:
    """Create queue ``name`` (raw bodies) on the emulator through the MNS SDK."""
    return make_queue(Account(emulator.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET), name)


@dataclass
class FnF:
    """Thin convenience over the SDK client (it stays the unmodified SDK underneath)."""

    client: Client

    def create_flow(self, name: str, definition: str, **extra: Any) -> dict[str, Any]:
        request = fnf_models.CreateFlowRequest(
            name=name, definition=definition, type="FDL", description="test", **extra
        )
        return self.client.create_flow(request).body.to_map()

    def start(
        self, flow: str, execution: str, inp: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        request = fnf_models.StartExecutionRequest(
            flow_name=flow, execution_name=execution, input=json.dumps(inp or {}), **extra
        )
        return self.client.start_execution(request).body.to_map()

    def start_sync(
        self, flow: str, execution: str | None = None, inp: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """StartSyncExecution (Express flows): the execution's end, in one call."""
        request = fnf_models.StartSyncExecutionRequest(
            flow_name=flow, execution_name=execution, input=json.dumps(inp or {})
        )
        return self.client.start_sync_execution(request).body.to_map()

    def describe_flow(self, name: str) -> dict[str, Any]:
        return self.client.describe_flow(fnf_models.DescribeFlowRequest(name=name)).body.to_map()

    def describe(self, flow: str, execution: str, wait: int = 0) -> dict[str, Any]:
        request = fnf_models.DescribeExecutionRequest(
            flow_name=flow, execution_name=execution, wait_time_seconds=wait
        )
        return self.client.describe_execution(request).body.to_map()

    def history(self, flow: str, execution: str) -> list[dict[str, Any]]:
        request = fnf_models.GetExecutionHistoryRequest(flow_name=flow, execution_name=execution)
        return self.client.get_execution_history(request).body.to_map()["Events"]

    def succeed(self, token: str, output: dict[str, Any]) -> int:
        request = fnf_models.ReportTaskSucceededRequest(task_token=token, output=json.dumps(output))
        return self.client.report_task_succeeded(request).body.event_id

    def fail(self, token: str, error: str, cause: str) -> int:
        request = fnf_models.ReportTaskFailedRequest(task_token=token, error=error, cause=cause)
        return self.client.report_task_failed(request).body.event_id

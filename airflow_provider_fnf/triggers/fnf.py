"""Wait for a Serverless Workflow or CloudFlow execution to end, in the triggerer.

:class:`ServerlessWorkflowExecutionTrigger` long-polls ``DescribeExecution`` (``WaitTimeSeconds``,
at most 60 s a call) in a worker thread, so the triggerer's event loop never blocks, and yields
exactly one event when the execution ends (or cannot be watched), then returns.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fnf.limits import FNF_MAX_DESCRIBE_WAIT_SECONDS

if TYPE_CHECKING:
    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

RUNNING_STATUSES = frozenset({"Starting", "Running", ""})
"""Statuses of an execution that has not ended (both generations: ``Starting``, ``Running``; an
empty status, as StartExecution answers, means it is just starting)."""
SUCCEEDED_STATUS = "Succeeded"
FAILED_STATUSES = frozenset({"Failed", "TimedOut", "Stopped"})
"""Statuses an execution ends in without succeeding (both generations; CloudFlow's
DescribeExecution documents ``Starting|Running|Stopped|Succeeded|Failed|TimedOut``)."""
ENDED_STATUSES = FAILED_STATUSES | {SUCCEEDED_STATUS}
_ENDING_EVENTS = ("ExecutionFailed", "ExecutionTimedOut", "ExecutionStopped")
_ERROR_KEYS = ("error", "Error", "code", "Code", "errorCode", "ErrorCode")
_CAUSE_KEYS = ("cause", "Cause", "detail", "Detail", "errorMessage", "ErrorMessage")
"""Where an ending event's detail names the error and its cause: Serverless Workflow writes
``error``/``cause``; CloudFlow's Fail state says ``Code``/``Detail`` (the detail's field names are
not documented for either)."""


def unknown_status_message(execution: dict[str, Any]) -> str | None:
    """Why an execution cannot be watched on, when DescribeExecution answered a status that is
    neither running nor ended; None otherwise."""
    status = execution.get("Status") or ""
    if status in RUNNING_STATUSES or status in ENDED_STATUSES:
        return None
    return (
        f"Execution {execution.get('Name')} of flow {execution.get('FlowName')} has the status "
        f"{status!r}, which is none of {', '.join(sorted(s for s in RUNNING_STATUSES | ENDED_STATUSES if s))}"
    )


def _first(detail: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = detail.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def parse_execution_output(output: Any) -> Any:
    """An execution's ``Output``: the parsed JSON when it is JSON, None when empty, else the text."""
    if output is None or (isinstance(output, str) and not output.strip()):
        return None
    if not isinstance(output, str):
        return output
    try:
        return json.loads(output)
    except ValueError:
        return output


def execution_failure(hook: ServerlessWorkflowHook, flow_name: str, execution_name: str) -> tuple[str, str]:
    """(error, cause) of an execution that ended without succeeding, read from its history's last
    ``ExecutionFailed``/``TimedOut``/``Stopped`` event (its detail's ``error`` and ``cause``, or
    ``Code`` and ``Detail``).

    The detail's fields are not documented: anything missing comes back as ``""``.
    """
    events = hook.get_execution_history(flow_name, execution_name)
    for event in reversed(events):
        if event.get("Type") not in _ENDING_EVENTS:
            continue
        detail: Any = event.get("EventDetail") or "{}"
        if isinstance(detail, str):
            try:
                detail = json.loads(detail)
            except ValueError:
                return "", detail
        if isinstance(detail, dict):
            return _first(detail, _ERROR_KEYS), _first(detail, _CAUSE_KEYS)
    return "", ""


def execution_event(hook: ServerlessWorkflowHook, execution: dict[str, Any]) -> dict[str, Any]:
    """The event payload describing an execution that has ended (JSON-safe)."""
    flow_name = execution.get("FlowName", "")
    name = execution.get("Name", "")
    status = execution.get("Status", "")
    payload: dict[str, Any] = {
        "status": "success" if status == SUCCEEDED_STATUS else "failed",
        "flow_name": flow_name,
        "execution_name": name,
        "execution_status": status,
        "output": execution.get("Output"),
        "error": "",
        "cause": "",
    }
    if status != SUCCEEDED_STATUS:
        payload["error"], payload["cause"] = execution_failure(hook, flow_name, name)
    return payload


class ServerlessWorkflowExecutionTrigger(BaseTrigger):
    """Fire once when a Serverless Workflow or CloudFlow execution ends.

    The event payload is ``{"status": "success" | "failed" | "error", "flow_name",
    "execution_name", "execution_status", "output" (the raw Output text), "error", "cause",
    "message"}``: ``failed`` when the execution ended Failed, TimedOut or Stopped (``error`` and
    ``cause`` from its history), ``error`` when it could not be watched (``message`` says why:
    a call failed, or the execution has a status neither generation documents).

    :param flow_name: the flow.
    :param execution_name: the execution.
    :param fnf_conn_id: the ``fnf`` connection.
    :param wait_time_seconds: ``DescribeExecution`` long poll per call, 0..60.
    :param poll_interval: the least time between two calls, in seconds, so that an answer that
        comes back at once (a service without long polling) does not make a busy loop.
    """

    def __init__(
        self,
        *,
        flow_name: str,
        execution_name: str,
        fnf_conn_id: str = "fnf_default",
        wait_time_seconds: int = FNF_MAX_DESCRIBE_WAIT_SECONDS,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        if not 0 <= wait_time_seconds <= FNF_MAX_DESCRIBE_WAIT_SECONDS:
            raise ValueError(
                f"wait_time_seconds must be within 0..{FNF_MAX_DESCRIBE_WAIT_SECONDS} (got {wait_time_seconds})"
            )
        if poll_interval < 0:
            raise ValueError(f"poll_interval must not be negative (got {poll_interval})")
        self.flow_name = flow_name
        self.execution_name = execution_name
        self.fnf_conn_id = fnf_conn_id
        self.wait_time_seconds = wait_time_seconds
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "flow_name": self.flow_name,
                "execution_name": self.execution_name,
                "fnf_conn_id": self.fnf_conn_id,
                "wait_time_seconds": self.wait_time_seconds,
                "poll_interval": self.poll_interval,
            },
        )

    def _hook(self) -> ServerlessWorkflowHook:
        from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

        return ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        while True:
            started = time.monotonic()
            try:
                execution = await asyncio.to_thread(
                    hook.describe_execution, self.flow_name, self.execution_name, self.wait_time_seconds
                )
                status = execution.get("Status") or ""
                unknown = unknown_status_message(execution)
                if unknown:
                    yield TriggerEvent(
                        {
                            "status": "error",
                            "flow_name": self.flow_name,
                            "execution_name": self.execution_name,
                            "message": unknown,
                        }
                    )
                    return
                if status not in RUNNING_STATUSES:
                    payload = await asyncio.to_thread(execution_event, hook, execution)
                    yield TriggerEvent(payload)
                    return
            except Exception as err:  # one final event that says why, never a silent stop
                yield TriggerEvent(
                    {
                        "status": "error",
                        "flow_name": self.flow_name,
                        "execution_name": self.execution_name,
                        "message": f"Could not watch execution {self.execution_name} of flow "
                        f"{self.flow_name} (connection {self.fnf_conn_id}): {type(err).__name__}: {err}",
                    }
                )
                return
            self.log.debug(
                "Execution %s of flow %s is %s", self.execution_name, self.flow_name, execution.get("Status")
            )
            remaining = self.poll_interval - (time.monotonic() - started)
            if remaining > 0:
                await asyncio.sleep(remaining)

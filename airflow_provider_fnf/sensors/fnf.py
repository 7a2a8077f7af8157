"""Wait for a Serverless Workflow or CloudFlow execution to end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf

from airflow_provider_fnf.exceptions import ServerlessWorkflowError, ServerlessWorkflowExecutionFailedError
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.limits import FNF_MAX_DESCRIBE_WAIT_SECONDS
from airflow_provider_fnf.links.fnf import ServerlessWorkflowExecutionLink
from airflow_provider_fnf.triggers.fnf import (
    RUNNING_STATUSES,
    SUCCEEDED_STATUS,
    ServerlessWorkflowExecutionTrigger,
    execution_event,
    parse_execution_output,
    unknown_status_message,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


def raise_for_execution_event(event: dict[str, Any] | None, *, where: str) -> Any:
    """Validate a :class:`ServerlessWorkflowExecutionTrigger` event and return the parsed Output.

    Raises :class:`ServerlessWorkflowExecutionFailedError` when the execution did not succeed and
    :class:`ServerlessWorkflowError` when the event is missing or could not be produced.
    """
    if not isinstance(event, dict) or event.get("status") not in ("success", "failed", "error"):
        raise ServerlessWorkflowError(f"{where}: unexpected trigger event {event!r}")
    if event["status"] == "error":
        raise ServerlessWorkflowError(f"{where}: {event.get('message')}")
    flow_name, execution_name = event.get("flow_name"), event.get("execution_name")
    if event["status"] == "failed":
        raise ServerlessWorkflowExecutionFailedError(
            f"Execution {execution_name} of flow {flow_name} ended {event.get('execution_status')}: "
            f"error {event.get('error') or '(none)'}, cause {event.get('cause') or '(none)'}",
            resource=f"{flow_name}/{execution_name}",
            code=event.get("error") or None,
        )
    return parse_execution_output(event.get("output"))


class ServerlessWorkflowExecutionSensor(BaseSensorOperator):
    """Wait until a Serverless Workflow or CloudFlow execution ends; succeed when it Succeeded
    (pushing its parsed Output as the return value) and fail when it ended Failed, TimedOut or
    Stopped, naming the flow's error and cause. A status neither generation documents fails the
    sensor, naming it.

    :param flow_name: the flow (templated).
    :param execution_name: the execution (templated).
    :param fnf_conn_id: the ``fnf`` connection (templated).
    :param wait_time_seconds: in deferrable mode, the ``DescribeExecution`` long poll per call
        (0..60); pokes never long-poll.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("flow_name", "execution_name", "fnf_conn_id")
    operator_extra_links = (ServerlessWorkflowExecutionLink(),)
    ui_color = "#ffb366"

    def __init__(
        self,
        *,
        flow_name: str,
        execution_name: str,
        fnf_conn_id: str = "fnf_default",
        wait_time_seconds: int = FNF_MAX_DESCRIBE_WAIT_SECONDS,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= wait_time_seconds <= FNF_MAX_DESCRIBE_WAIT_SECONDS:
            raise ValueError(
                f"Task {kwargs.get('task_id')}: wait_time_seconds must be within "
                f"0..{FNF_MAX_DESCRIBE_WAIT_SECONDS} (got {wait_time_seconds})"
            )
        self.flow_name = flow_name
        self.execution_name = execution_name
        self.fnf_conn_id = fnf_conn_id
        self.wait_time_seconds = wait_time_seconds
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> ServerlessWorkflowHook:
        return ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)

    def execute(self, context: Context) -> Any:
        ServerlessWorkflowExecutionLink.persist(
            context,
            fnf_conn_id=self.fnf_conn_id,
            flow_name=self.flow_name,
            execution_name=self.execution_name,
        )
        if not self.deferrable:
            return super().execute(context)
        # Poke once before deferring: an execution that already ended needs no triggerer.
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        self.defer(
            trigger=ServerlessWorkflowExecutionTrigger(
                flow_name=self.flow_name,
                execution_name=self.execution_name,
                fnf_conn_id=self.fnf_conn_id,
                wait_time_seconds=self.wait_time_seconds,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout is not None else None,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        execution = self.hook.describe_execution(self.flow_name, self.execution_name)
        status = execution.get("Status") or ""
        self.log.info("Execution %s of flow %s is %s", self.execution_name, self.flow_name, status)
        unknown = unknown_status_message(execution)
        if unknown:
            raise ServerlessWorkflowError(f"Task {self.task_id}: {unknown}")
        if status in RUNNING_STATUSES:
            return PokeReturnValue(is_done=False)
        if status == SUCCEEDED_STATUS:
            return PokeReturnValue(is_done=True, xcom_value=parse_execution_output(execution.get("Output")))
        return PokeReturnValue(
            is_done=True,
            xcom_value=raise_for_execution_event(execution_event(self.hook, execution), where=self.task_id),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        output = raise_for_execution_event(event, where=f"Task {self.task_id}")
        self.log.info("Execution %s of flow %s succeeded", self.execution_name, self.flow_name)
        return output

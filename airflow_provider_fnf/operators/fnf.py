"""Operators that talk to Serverless Workflow.

- :class:`ServerlessWorkflowReportTaskOperator`: the final operator of a worker DAG. It reports the
  task token's result (ReportTaskSucceeded or, when an upstream task failed, ReportTaskFailed) and
  only then deletes the message that carried the token.
- :class:`ServerlessWorkflowStartExecutionOperator`: the reverse direction, start a flow (and
  optionally wait for it, in the worker or in the triggerer).
- :class:`ServerlessWorkflowStartSyncExecutionOperator`: run a CloudFlow Express flow
  synchronously and return its output.

What a report does (targets, Output checks, the Cause, deleting the message afterwards) lives in
:mod:`airflow_provider_fnf.reporting`, which the DAG-level safety net in
:mod:`airflow_provider_fnf.callbacks` uses too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    ServerlessWorkflowError,
    ServerlessWorkflowExecutionFailedError,
    ServerlessWorkflowOutputError,
)
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.limits import FNF_MAX_DESCRIBE_WAIT_SECONDS
from airflow_provider_fnf.links.fnf import ServerlessWorkflowExecutionLink
from airflow_provider_fnf.masking import mask_task_token
from airflow_provider_fnf.reporting import (
    DEFAULT_TASK_FAILED_ERROR,
    INVALID_OUTPUT_ERROR,
    REPORT_XCOM_KEY,
    FailedTask,
    ReportTarget,
    check_error_name,
    collect_failed_tasks,
    error_name_for,
    failure_cause,
    json_object_text,
    rejected_token_text,
    report_failure,
    report_success,
)
from airflow_provider_fnf.sensors.fnf import raise_for_execution_event
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


# --- the report operator -------------------------------------------------------------------
class ServerlessWorkflowReportTaskOperator(BaseOperator):
    """Report a waitForCallback task's result to Serverless Workflow, then delete its message.

    Put it last in a worker DAG. By default it reads the task token, queue name, receipt handle,
    message id and MNS connection id from the run's ``dag_run.conf`` (the parsed-message dict the
    dispatch writes); give ``message`` (one such dict, e.g. when mapped over the messages of a
    watcher-driven run) or the single fields to override.

    It runs whatever the outcome upstream (``trigger_rule`` ``all_done``):

    - every upstream task succeeded: ReportTaskSucceeded with ``output`` (a JSON object, at most
      32 KiB, checked before the call), then delete the message; the return value says so.
    - an upstream task failed (or is upstream_failed): ReportTaskFailed with an error name the
      flow's ``retry``/``catch`` can match (``error``, or ``error_names`` of the failed task's
      exception type, recorded by :func:`airflow_provider_fnf.callbacks.record_task_error`) and a
      Cause naming the failed tasks and their errors; delete the message; then fail, so that the
      run shows as failed.
    - TaskAlreadyCompleted counts as reported: the message is deleted. A stale receipt handle on
      delete is logged. A report that still fails after the hook's retries fails the task (its
      own retries then apply) and the message is kept.
    - a token the service rejects (forged, altered, from another account or region): no report
      can ever succeed, so the message follows the poison policy it carries (the trigger's or
      sensor's: dead-letter the raw body, delete, or leave) at once, one log line says which
      message, the service's code and what to check, and the task fails.
    - bad input (no task token, an Output that is not a JSON object or is too large): the task
      fails, naming the run and the message id; where a token exists the flow is told with
      ReportTaskFailed ``Airflow.InvalidOutput``, never left to time out.

    :param output: the Output (templated): a dict, a JSON object string, or an upstream task's
        return value (``output=some_task.output``). None reports ``{}`` unless ``output_task_id``.
    :param output_task_id: report the return value of this task instead (at the same map index
        when both are mapped).
    :param message: one parsed-message dict (templated; mappable: ``.expand(message=...)``).
        Default: ``dag_run.conf``.
    :param task_token: the task token (templated). Default: from ``message`` / ``dag_run.conf``.
    :param queue_name: the queue of the message (templated). Default: likewise.
    :param receipt_handle: the receipt handle of the message (templated). Default: likewise.
    :param message_id: the message id, for logs and errors (templated). Default: likewise.
    :param mns_conn_id: the ``mns`` connection to delete with (templated). Default: likewise,
        else ``mns_default``.
    :param fnf_conn_id: the ``fnf`` connection to report with (templated).
    :param error: the error name reported when an upstream task failed (templated), default
        ``Airflow.TaskFailed``.
    :param error_names: exception type name -> error name, e.g. ``{"TimeoutError": "Airflow.Timeout"}``;
        merged over ``{"AirflowTaskTimeout": "Airflow.Timeout"}``. Base classes match too.
    :param cause: a Cause to report instead of the generated one (templated).
    :param delete_message: delete the message after the report (default True); False leaves the
        message to you, also when its token is rejected.
    :param match_map_index: when this task is mapped (one message per map index), a failed
        instance of a *mapped* upstream task counts only at the same map index, so one bad
        message does not fail the others; unmapped upstream tasks always count (default True).

    ``output_task_id`` does not make that task upstream: set the dependency (``work >> report``).
    """

    template_fields: Sequence[str] = (
        "report_output",
        "output_task_id",
        "message",
        "task_token",
        "queue_name",
        "receipt_handle",
        "message_id",
        "mns_conn_id",
        "fnf_conn_id",
        "error",
        "cause",
    )
    template_fields_renderers = {"report_output": "json", "message": "json"}
    operator_extra_links = (ServerlessWorkflowExecutionLink(),)
    ui_color = "#ff9933"

    def __init__(
        self,
        *,
        output: Any = None,
        output_task_id: str | None = None,
        message: dict[str, Any] | str | None = None,
        task_token: str | None = None,
        queue_name: str | None = None,
        receipt_handle: str | None = None,
        message_id: str | None = None,
        mns_conn_id: str | None = None,
        fnf_conn_id: str = "fnf_default",
        error: str = DEFAULT_TASK_FAILED_ERROR,
        error_names: dict[str, str] | None = None,
        cause: str | None = None,
        delete_message: bool = True,
        match_map_index: bool = True,
        trigger_rule: str = TriggerRule.ALL_DONE,
        **kwargs: Any,
    ) -> None:
        super().__init__(trigger_rule=trigger_rule, **kwargs)
        where = f"Task {self.task_id}"
        if "{{" not in error:
            check_error_name(error, where=where)
        for type_name, name in (error_names or {}).items():
            check_error_name(name, where=f"{where}, error_names[{type_name!r}]")
        if output is not None and output_task_id is not None:
            raise FnFConfigurationError(f"{where}: give output or output_task_id, not both")
        # BaseOperator.output is the task's own XComArg: the value lives in report_output.
        self.report_output = output
        self.output_task_id = output_task_id
        self.message = message
        self.task_token = task_token
        self.queue_name = queue_name
        self.receipt_handle = receipt_handle
        self.message_id = message_id
        self.mns_conn_id = mns_conn_id
        self.fnf_conn_id = fnf_conn_id
        self.error = error
        self.error_names = dict(error_names or {})
        self.cause = cause
        self.delete_message = delete_message
        self.match_map_index = match_map_index
        # A mapped task is built again from its resolved arguments before its fields are rendered
        # and stored for the UI: register the token with the secrets masker now.
        self._mask_token_in(message)
        self._mask_token_in(task_token)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        # Mask the token before the rendered fields are stored for the UI.
        for source in (self.message, self.task_token, self._conf(context)):
            self._mask_token_in(source)
        super().render_template_fields(context, jinja_env)
        for source in (self.message, self.task_token):
            self._mask_token_in(source)

    @staticmethod
    def _mask_token_in(source: Any) -> None:
        if isinstance(source, str) and source and "{{" not in source:
            if source.lstrip().startswith("{"):
                try:
                    source = json.loads(source)
                except ValueError:
                    return
            else:
                mask_task_token(source)
                return
        if isinstance(source, Mapping) and isinstance(source.get("task_token"), str):
            mask_task_token(source["task_token"])

    @staticmethod
    def _conf(context: Context) -> dict[str, Any]:
        dag_run = context.get("dag_run")
        conf_value = getattr(dag_run, "conf", None) if dag_run is not None else None
        return dict(conf_value) if isinstance(conf_value, Mapping) else {}

    def _target(self, context: Context) -> ReportTarget:
        message: Any = self.message
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
                raise AirflowFailException(
                    f"Task {self.task_id}, run {context.get('run_id')}: message is not a JSON object"
                ) from None
        if message is None:
            message = self._conf(context)
        if not isinstance(message, Mapping):
            raise AirflowFailException(
                f"Task {self.task_id}, run {context.get('run_id')}: message must be a dict "
                f"(got {type(message).__name__})"
            )
        return ReportTarget.from_message(
            message,
            task_token=self.task_token,
            queue_name=self.queue_name,
            receipt_handle=self.receipt_handle,
            message_id=self.message_id,
            mns_conn_id=self.mns_conn_id,
        )

    def _failed_upstream(self, context: Context) -> list[FailedTask]:
        upstream = self.get_flat_relative_ids(upstream=True)
        if not upstream:
            return []
        order = (
            [task_id for task_id in self.dag.task_ids if task_id in upstream]
            if self.has_dag()
            else sorted(upstream)
        )
        failed = collect_failed_tasks(context["dag"].dag_id, context["run_id"], order)
        map_index = getattr(context["ti"], "map_index", -1)
        if self.match_map_index and map_index is not None and map_index >= 0 and self.has_dag():
            # One message per map index: a mapped upstream task counts at our index only.
            mapped = {task_id for task_id in upstream if _is_mapped(self.dag.get_task(task_id))}
            failed = [t for t in failed if t.task_id not in mapped or t.map_index == map_index]
        return failed

    def _output_value(self, context: Context) -> Any:
        if self.output_task_id is None:
            return self.report_output
        map_index = getattr(context["ti"], "map_index", -1)
        upstream = self.dag.get_task(self.output_task_id) if self.has_dag() else None
        map_indexes = map_index if upstream is not None and _is_mapped(upstream) else None
        return context["ti"].xcom_pull(task_ids=self.output_task_id, map_indexes=map_indexes)

    def execute(self, context: Context) -> dict[str, Any]:
        run_id = context.get("run_id")
        target = self._target(context)
        where = f"Task {self.task_id}, {target.where(run_id)}"
        ServerlessWorkflowExecutionLink.persist(
            context,
            fnf_conn_id=self.fnf_conn_id,
            flow_name=target.flow_name,
            execution_name=target.execution_name,
        )
        if not target.task_token:
            source = "message" if self.message is not None else "dag_run.conf"
            raise AirflowFailException(
                f"{where}: no task token (looked in task_token and {source}['task_token']); "
                "nothing was reported and the message is kept"
            )

        failed = self._failed_upstream(context)
        if failed:
            error = error_name_for(failed, default=self.error, error_names=self.error_names)
            cause = self.cause or failure_cause(failed, dag_id=context["dag"].dag_id, run_id=str(run_id))
            summary = self._report_failure(context, target, error, cause)
            raise AirflowFailException(
                f"{where}: upstream task(s) {', '.join(t.label for t in failed)} failed; reported to "
                f"Serverless Workflow as {error} ({summary['outcome']}), message "
                f"{'deleted' if summary['deleted'] else 'not deleted'}"
            )

        fnf_hook = ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)
        try:
            output_text = json_object_text(
                self._output_value(context), what="the Output", where=where, limits=fnf_hook.limits
            )
        except ServerlessWorkflowOutputError as err:
            summary = self._report_failure(context, target, INVALID_OUTPUT_ERROR, str(err))
            raise AirflowFailException(
                f"{err}; reported to Serverless Workflow as {INVALID_OUTPUT_ERROR} ({summary['outcome']})"
            ) from err

        summary = report_success(
            target,
            output_text,
            fnf_hook=fnf_hook,
            log=self.log,
            run_id=run_id,
            delete_message=self.delete_message,
        )
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
        if summary["outcome"] == "rejected_token":
            raise AirflowFailException(f"{where}: {rejected_token_text(summary)}")
        return summary

    def _report_failure(
        self, context: Context, target: ReportTarget, error: str, cause: str
    ) -> dict[str, Any]:
        summary = report_failure(
            target,
            error=error,
            cause=cause,
            fnf_hook=ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id),
            log=self.log,
            run_id=context.get("run_id"),
            delete_message=self.delete_message,
        )
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
        if summary["outcome"] == "rejected_token":
            raise AirflowFailException(
                f"Task {self.task_id}, {target.where(context.get('run_id'))}: reporting {error}: "
                f"{rejected_token_text(summary)}"
            )
        return summary


def _is_mapped(task: Any) -> bool:
    return bool(getattr(task, "is_mapped", False)) or type(task).__name__ == "MappedOperator"


# --- the reverse direction -----------------------------------------------------------------
class ServerlessWorkflowStartExecutionOperator(BaseOperator):
    """Start an execution of a Serverless Workflow or CloudFlow (Standard mode) flow, and
    optionally wait for it to end. For a CloudFlow Express flow use
    :class:`ServerlessWorkflowStartSyncExecutionOperator`.

    Without waiting it returns the execution name. Waiting, it returns the execution's Output
    (parsed JSON) and fails with the execution's error and cause when it ends Failed, TimedOut or
    Stopped. The execution name is also pushed under the XCom key ``execution_name``, and the
    task gets a "Serverless Workflow execution" link.

    An ``execution_name`` that already exists is attached to rather than failed: a retried task
    waits for the execution its first try started.

    :param flow_name: the flow (templated).
    :param execution_input: the Input (templated): a dict or a JSON object string, within the
        connection's service limit (32 KiB Serverless Workflow, 64 KiB CloudFlow).
    :param execution_name: the execution name (templated); None lets the service choose one.
    :param qualifier: CloudFlow: the flow version or alias to run (templated); None runs the
        latest definition.
    :param fnf_conn_id: the ``fnf`` connection (templated).
    :param wait_for_completion: wait for the execution to end (default False).
    :param wait_time_seconds: ``DescribeExecution`` long poll per call while waiting, 0..60.
    :param poll_interval: the least seconds between two ``DescribeExecution`` calls.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = (
        "flow_name",
        "execution_input",
        "execution_name",
        "qualifier",
        "fnf_conn_id",
    )
    template_fields_renderers = {"execution_input": "json"}
    operator_extra_links = (ServerlessWorkflowExecutionLink(),)
    ui_color = "#ffb366"

    def __init__(
        self,
        *,
        flow_name: str,
        execution_input: dict[str, Any] | str | None = None,
        execution_name: str | None = None,
        qualifier: str | None = None,
        fnf_conn_id: str = "fnf_default",
        wait_for_completion: bool = False,
        wait_time_seconds: int = FNF_MAX_DESCRIBE_WAIT_SECONDS,
        poll_interval: float = 5.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= wait_time_seconds <= FNF_MAX_DESCRIBE_WAIT_SECONDS:
            raise FnFConfigurationError(
                f"Task {self.task_id}: wait_time_seconds must be within 0..{FNF_MAX_DESCRIBE_WAIT_SECONDS} "
                f"(got {wait_time_seconds})"
            )
        self.flow_name = flow_name
        self.execution_input = execution_input
        self.execution_name = execution_name
        self.qualifier = qualifier
        self.fnf_conn_id = fnf_conn_id
        self.wait_for_completion = wait_for_completion
        self.wait_time_seconds = wait_time_seconds
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> ServerlessWorkflowHook:
        return ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)

    def _start(self, where: str) -> dict[str, Any]:
        input_text = execution_input_text(self.hook, self.execution_input, where=where)
        try:
            return self.hook.start_execution(
                self.flow_name, input_text, self.execution_name or None, qualifier=self.qualifier or None
            )
        except ServerlessWorkflowError as err:
            if err.code != "ExecutionAlreadyExists" or not self.execution_name:
                raise
            self.log.info(
                "Execution %s of flow %s already exists: attaching to it", self.execution_name, self.flow_name
            )
            return self.hook.describe_execution(self.flow_name, self.execution_name)

    def execute(self, context: Context) -> Any:
        where = f"Task {self.task_id}, flow {self.flow_name}"
        execution = self._start(where)
        name = execution.get("Name") or self.execution_name
        if not name:
            raise ServerlessWorkflowError(f"{where}: StartExecution answered without an execution name")
        self.execution_name = name
        self.log.info("Started execution %s of flow %s (%s)", name, self.flow_name, execution.get("Status"))
        context["ti"].xcom_push(key="execution_name", value=name)
        ServerlessWorkflowExecutionLink.persist(
            context, fnf_conn_id=self.fnf_conn_id, flow_name=self.flow_name, execution_name=name
        )
        if not self.wait_for_completion:
            return name
        if self.deferrable:
            # Check once before deferring: a short flow may already be done.
            execution = self.hook.describe_execution(self.flow_name, name)
            if _has_ended(execution, where=where):
                return raise_for_execution_event(execution_event(self.hook, execution), where=where)
            self.defer(
                trigger=ServerlessWorkflowExecutionTrigger(
                    flow_name=self.flow_name,
                    execution_name=name,
                    fnf_conn_id=self.fnf_conn_id,
                    wait_time_seconds=self.wait_time_seconds,
                    poll_interval=self.poll_interval,
                ),
                method_name="execute_complete",
            )
        while True:
            started = time.monotonic()
            execution = self.hook.describe_execution(self.flow_name, name, self.wait_time_seconds)
            if _has_ended(execution, where=where):
                return raise_for_execution_event(execution_event(self.hook, execution), where=where)
            self.log.info("Execution %s of flow %s is %s", name, self.flow_name, execution.get("Status"))
            remaining = self.poll_interval - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        output = raise_for_execution_event(event, where=f"Task {self.task_id}, flow {self.flow_name}")
        self.log.info(
            "Execution %s of flow %s succeeded", (event or {}).get("execution_name"), self.flow_name
        )
        return output


def execution_input_text(hook: ServerlessWorkflowHook, value: Any, *, where: str) -> str:
    """An execution's Input as JSON text, checked against the connection's service limit; None
    means ``{}``. Errors name ``where``, the limit and by how much it is passed."""
    return json_object_text(
        value, what="the execution input", where=where, limits=hook.limits, conn_id=hook.fnf_conn_id
    )


def _has_ended(execution: Mapping[str, Any], *, where: str) -> bool:
    """Whether a described execution has ended; a status neither generation documents is an error."""
    unknown = unknown_status_message(dict(execution))
    if unknown:
        raise ServerlessWorkflowError(f"{where}: {unknown}")
    return (execution.get("Status") or "") not in RUNNING_STATUSES


class ServerlessWorkflowStartSyncExecutionOperator(BaseOperator):
    """Run a CloudFlow Express flow synchronously (StartSyncExecution) and return its Output.

    The call returns once the execution has ended (an Express execution runs at most 5 minutes),
    so the task holds its worker slot for that long and is not deferrable. It returns the parsed
    Output (the task's XCom), pushes the execution's name (``{execution_name}:{UUID}``) under the
    XCom key ``execution_name``, links to the flow's console page, and fails with the flow's
    ErrorCode and ErrorMessage when the execution ends Failed or TimedOut.

    Express executions have no unique name to attach to: a retried task runs the flow again, so
    give the task retries only when the flow is safe to repeat. The hook retries the call only
    when it was throttled (refused before it ran).

    :param flow_name: the Express flow (templated).
    :param execution_input: the Input (templated): a dict or a JSON object string, within the
        connection's service limit (64 KiB with extra ``"service": "cloudflow"``).
    :param execution_name: a name for the execution (templated); the service appends
        ``:{UUID}``. None lets the service choose one.
    :param qualifier: the flow version or alias to run (templated); None runs the latest.
    :param fnf_conn_id: the ``fnf`` connection (templated).
    """

    template_fields: Sequence[str] = (
        "flow_name",
        "execution_input",
        "execution_name",
        "qualifier",
        "fnf_conn_id",
    )
    template_fields_renderers = {"execution_input": "json"}
    operator_extra_links = (ServerlessWorkflowExecutionLink(),)
    ui_color = "#ffb366"

    def __init__(
        self,
        *,
        flow_name: str,
        execution_input: dict[str, Any] | str | None = None,
        execution_name: str | None = None,
        qualifier: str | None = None,
        fnf_conn_id: str = "fnf_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow_name = flow_name
        self.execution_input = execution_input
        self.execution_name = execution_name
        self.qualifier = qualifier
        self.fnf_conn_id = fnf_conn_id

    @cached_property
    def hook(self) -> ServerlessWorkflowHook:
        return ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)

    def execute(self, context: Context) -> Any:
        where = f"Task {self.task_id}, Express flow {self.flow_name}"
        input_text = execution_input_text(self.hook, self.execution_input, where=where)
        execution = self.hook.start_sync_execution(
            self.flow_name, input_text, self.execution_name or None, qualifier=self.qualifier or None
        )
        name = execution.get("Name") or ""
        status = execution.get("Status") or ""
        context["ti"].xcom_push(key="execution_name", value=name)
        ServerlessWorkflowExecutionLink.persist(
            context, fnf_conn_id=self.fnf_conn_id, flow_name=self.flow_name, execution_name=name, express=True
        )
        self.log.info(
            "Express execution %s of flow %s ended %s (started %s, stopped %s)",
            name,
            self.flow_name,
            status,
            execution.get("StartedTime"),
            execution.get("StoppedTime"),
        )
        if status != SUCCEEDED_STATUS:
            raise ServerlessWorkflowExecutionFailedError(
                f"{where}: execution {name or '(unnamed)'} ended {status or '(no status)'}: error "
                f"{execution.get('ErrorCode') or '(none)'}, cause {execution.get('ErrorMessage') or '(none)'}",
                resource=f"{self.flow_name}/{name}",
                code=execution.get("ErrorCode") or None,
            )
        return parse_execution_output(execution.get("Output"))

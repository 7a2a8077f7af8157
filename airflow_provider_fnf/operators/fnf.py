"""Operators that talk to Serverless Workflow.

- :class:`ServerlessWorkflowReportTaskOperator`: the final operator of a worker DAG. It reports the
  task token's result (ReportTaskSucceeded or, when an upstream task failed, ReportTaskFailed) and
  only then deletes the message that carried the token.
- :class:`ServerlessWorkflowStartExecutionOperator`: the reverse direction, start a flow (and
  optionally wait for it, in the worker or in the triggerer).

The reporting logic is also used by the DAG-level safety net in :mod:`airflow_provider_fnf.callbacks`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fnf.acknowledgement import MNSMessageAcknowledger
from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    ServerlessWorkflowError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowOutputError,
    ServerlessWorkflowTaskAlreadyCompletedError,
)
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.limits import (
    FNF_MAX_CAUSE_CHARS,
    FNF_MAX_DESCRIBE_WAIT_SECONDS,
    FNF_MAX_ERROR_CHARS,
    FNF_MAX_OUTPUT_BYTES,
)
from airflow_provider_fnf.links.fnf import ServerlessWorkflowExecutionLink
from airflow_provider_fnf.masking import mask_task_token, redact_text
from airflow_provider_fnf.messages import decode_task_token
from airflow_provider_fnf.sensors.fnf import raise_for_execution_event
from airflow_provider_fnf.triggers.fnf import (
    RUNNING_STATUSES,
    ServerlessWorkflowExecutionTrigger,
    execution_event,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_TASK_FAILED_ERROR = "Airflow.TaskFailed"
"""The error name reported when an upstream task failed: what a flow's ``retry``/``catch`` match."""
DEFAULT_TIMEOUT_ERROR = "Airflow.Timeout"
"""The error name reported for a task timeout (``AirflowTaskTimeout``) or a DAG run timeout."""
INVALID_OUTPUT_ERROR = "Airflow.InvalidOutput"
"""The error name reported when the Output is not a JSON object or is larger than 32 KiB."""
DEFAULT_ERROR_NAMES: dict[str, str] = {"AirflowTaskTimeout": DEFAULT_TIMEOUT_ERROR}
"""Exception type -> error name used unless the author maps the type otherwise."""

TASK_ERROR_XCOM_KEY = "serverless_workflow_task_error"
"""XCom key under which :func:`airflow_provider_fnf.callbacks.record_task_error` stores a failed
task's exception (type names and message), read back when the failure is reported."""
REPORT_XCOM_KEY = "serverless_workflow_report"
"""XCom key under which the report operator records what it reported, success or failure."""

MESSAGE_FIELDS = ("task_token", "queue_name", "receipt_handle", "message_id", "mns_conn_id")
FAILED_STATES = frozenset({"failed", "upstream_failed"})
_TRUNCATED = "... [truncated]"


# --- pure helpers ---------------------------------------------------------------------------
def check_error_name(name: str, *, where: str) -> str:
    """An error name as ReportTaskFailed takes it: 1..128 characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > FNF_MAX_ERROR_CHARS:
        raise FnFConfigurationError(
            f"{where}: an error name must be 1..{FNF_MAX_ERROR_CHARS} characters (got {name!r})"
        )
    return name


def truncate_cause(cause: str, limit: int = FNF_MAX_CAUSE_CHARS) -> str:
    """``cause`` cut to ``limit`` characters, with a visible marker when cut; never empty."""
    cause = cause or "(no cause)"
    if len(cause) <= limit:
        return cause
    return cause[: limit - len(_TRUNCATED)] + _TRUNCATED


def json_object_text(value: Any, *, what: str, where: str, limit: int = FNF_MAX_OUTPUT_BYTES) -> str:
    """``value`` as the compact JSON text of an object, checked against the service's limit.

    ``value`` is a dict, or a string holding a JSON object; None means ``{}``. Raises
    :class:`ServerlessWorkflowOutputError` naming ``what`` and ``where`` otherwise.
    """
    if value is None:
        return "{}"
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as err:
            raise ServerlessWorkflowOutputError(f"{where}: {what} is not valid JSON ({err})") from None
        if not isinstance(parsed, dict):
            raise ServerlessWorkflowOutputError(
                f"{where}: {what} must be a JSON object, got JSON {type(parsed).__name__}"
            )
        value = parsed
    if not isinstance(value, Mapping):
        raise ServerlessWorkflowOutputError(
            f"{where}: {what} must be a JSON object (a dict), got {type(value).__name__}"
        )
    try:
        text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ServerlessWorkflowOutputError(f"{where}: {what} cannot be written as JSON ({err})") from None
    size = len(text.encode("utf-8"))
    if size > limit:
        raise ServerlessWorkflowOutputError(
            f"{where}: {what} is {size} bytes of JSON, more than the {limit} bytes Serverless Workflow accepts"
        )
    return text


@dataclass
class FailedTask:
    """One task instance of a run that did not succeed, with the error recorded for it (if any)."""

    task_id: str
    map_index: int = -1
    state: str = "failed"
    error_types: list[str] = field(default_factory=list)
    """Exception type names, most specific first (``["TimeoutError", "OSError", ...]``)."""
    error_message: str | None = None

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    def describe(self) -> str:
        if self.error_types:
            return f"{self.label} failed: {self.error_types[0]}: {self.error_message or ''}".rstrip(": ")
        if self.state == "upstream_failed":
            return f"{self.label} did not run (upstream_failed)"
        return f"{self.label} {self.state} (no error recorded)"


def error_name_for(
    failed: Sequence[FailedTask], *, default: str, error_names: Mapping[str, str] | None = None
) -> str:
    """The error name to report: the first failed task whose exception type (or a base type) is in
    ``error_names`` (merged over :data:`DEFAULT_ERROR_NAMES`) decides; else ``default``."""
    mapping = {**DEFAULT_ERROR_NAMES, **(error_names or {})}
    for task in failed:
        for type_name in task.error_types:
            short = type_name.rsplit(".", 1)[-1]
            if type_name in mapping:
                return mapping[type_name]
            if short in mapping:
                return mapping[short]
    return default


def failure_cause(
    failed: Sequence[FailedTask], *, dag_id: str, run_id: str, headline: str | None = None
) -> str:
    """A Cause naming the failed tasks and their errors, within 4,096 characters."""
    root = [t for t in failed if t.state != "upstream_failed"]
    rest = [t for t in failed if t.state == "upstream_failed"]
    lines = [headline or f"Airflow DAG {dag_id} run {run_id}: {len(root) or len(failed)} task(s) failed"]
    lines += [t.describe() for t in root + rest]
    return truncate_cause("\n".join(lines))


def _state_key_owner(key: str, task_ids: Sequence[str]) -> tuple[str, int] | None:
    """(task id, map index) of a ``get_task_states`` key: ``task`` or ``task_{map_index}``."""
    if key in task_ids:
        return key, -1
    head, _, tail = key.rpartition("_")
    if head in task_ids and tail.isdigit():
        return head, int(tail)
    return None


def _supervisor_available() -> bool:
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def task_states_of_run(dag_id: str, run_id: str, task_ids: Sequence[str]) -> dict[str, str]:
    """The states of a run's task instances, keyed ``task_id`` or ``task_id_{map_index}``.

    Through the Task SDK in a task or in the DAG processor; where there is no supervisor to ask
    (``dag.test()`` runs DAG callbacks in its own process) from the metadata database.
    """
    if _supervisor_available():
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, task_ids=list(task_ids), run_ids=[run_id])
        return {key: str(getattr(state, "value", state)) for key, state in (states.get(run_id) or {}).items()}
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id.in_(list(task_ids)),
            )
        ).all()
    return {
        (task_id if map_index < 0 else f"{task_id}_{map_index}"): str(getattr(state, "value", state))
        for task_id, map_index, state in rows
    }


def xcom_of_run(dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> Any:
    """One XCom value of a run's task instance (or None), like :func:`task_states_of_run`."""
    if _supervisor_available():
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=run_id, key=key, task_ids=task_id, dag_ids=dag_id, map_indexes=map_index, limit=1
        )
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row is not None else None


def collect_failed_tasks(dag_id: str, run_id: str, task_ids: Sequence[str]) -> list[FailedTask]:
    """The task instances among ``task_ids`` of a run that are failed or upstream_failed, in the
    order of ``task_ids``, each with the error recorded by ``record_task_error`` when there is one.
    """
    if not task_ids:
        return []
    by_task: dict[tuple[str, int], str] = {}
    for key, state in task_states_of_run(dag_id, run_id, task_ids).items():
        owner = _state_key_owner(key, task_ids)
        if owner and state in FAILED_STATES:
            by_task[owner] = state
    failed: list[FailedTask] = []
    order = {task_id: i for i, task_id in enumerate(task_ids)}
    for (task_id, map_index), state in sorted(by_task.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        task = FailedTask(task_id=task_id, map_index=map_index, state=state)
        if state == "failed":
            recorded = xcom_of_run(dag_id, run_id, task_id, map_index, TASK_ERROR_XCOM_KEY)
            if isinstance(recorded, dict):
                task.error_types = [str(t) for t in recorded.get("types") or [] if t]
                task.error_message = recorded.get("message")
        failed.append(task)
    return failed


# --- reporting and acknowledging ------------------------------------------------------------
@dataclass
class ReportTarget:
    """Where a result goes: the task token, and the message that carried it."""

    task_token: str | None
    queue_name: str | None = None
    receipt_handle: str | None = None
    message_id: str | None = None
    mns_conn_id: str = "mns_default"
    flow_name: str | None = None
    execution_name: str | None = None

    @classmethod
    def from_message(cls, message: Mapping[str, Any], **overrides: Any) -> ReportTarget:
        """From a parsed message dict (or a run's conf), explicit non-None ``overrides`` winning."""
        values: dict[str, Any] = {
            name: message.get(name) for name in (*MESSAGE_FIELDS, "flow_name", "execution_name")
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["mns_conn_id"] = values.get("mns_conn_id") or "mns_default"
        target = cls(**values)
        mask_task_token(target.task_token)
        if target.task_token and not (target.flow_name and target.execution_name):
            flow_name, execution_name = decode_task_token(target.task_token)
            target.flow_name = target.flow_name or flow_name
            target.execution_name = target.execution_name or execution_name
        return target

    def where(self, run_id: str | None) -> str:
        return f"run {run_id or '(unknown)'}, message {self.message_id or '(none)'}"

    def summary(self, outcome: str, event_id: int | None, deleted: bool) -> dict[str, Any]:
        """JSON-safe record of a report (never the token)."""
        return {
            "outcome": outcome,
            "event_id": event_id,
            "message_id": self.message_id,
            "queue_name": self.queue_name,
            "flow_name": self.flow_name,
            "execution_name": self.execution_name,
            "deleted": deleted,
        }


def delete_reported_message(target: ReportTarget, *, log: Any, run_id: str | None = None) -> bool:
    """Delete the message of a task token that has been reported; return whether it was deleted.

    A stale receipt handle is not an error (see :mod:`airflow_provider_fnf.acknowledgement`):
    the newer delivery is reconciled by the dispatch. Other errors propagate.
    """
    if not target.queue_name:
        log.warning("Not deleting message %s (%s): no queue name", target.message_id, target.where(run_id))
        return False
    acknowledger = MNSMessageAcknowledger.for_connection(target.mns_conn_id)
    delivery = {
        "message_id": target.message_id,
        "queue_name": target.queue_name,
        "receipt_handle": target.receipt_handle,
    }
    return acknowledger.ack(delivery) == "deleted"


def report_failure(
    target: ReportTarget,
    *,
    error: str,
    cause: str,
    fnf_conn_id: str,
    log: Any,
    run_id: str | None = None,
    delete_message: bool = True,
) -> dict[str, Any]:
    """ReportTaskFailed for ``target`` then delete its message; TaskAlreadyCompleted counts as
    reported. Any other error propagates and the message is kept."""
    if not target.task_token:
        raise FnFConfigurationError(f"{target.where(run_id)}: no task token to report the failure with")
    hook = ServerlessWorkflowHook(fnf_conn_id=fnf_conn_id)
    outcome, event_id = "failed", None
    try:
        event_id = hook.report_task_failed(target.task_token, error, truncate_cause(redact_text(cause)))
        log.info("Reported task failed (%s) for %s, event %s", error, target.where(run_id), event_id)
    except ServerlessWorkflowTaskAlreadyCompletedError:
        outcome = "already_completed"
        log.info("The task of %s was already completed: counting it as reported", target.where(run_id))
    deleted = delete_reported_message(target, log=log, run_id=run_id) if delete_message else False
    return target.summary(outcome, event_id, deleted)


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
    - bad input (no task token, a token the service rejects, an Output that is not a JSON object
      or is too large): the task fails, naming the run and the message id; where a token exists
      the flow is told with ReportTaskFailed ``Airflow.InvalidOutput``, never left to time out.

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
    :param delete_message: delete the message after the report (default True).
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

        try:
            output_text = json_object_text(self._output_value(context), what="the Output", where=where)
        except ServerlessWorkflowOutputError as err:
            summary = self._report_failure(context, target, INVALID_OUTPUT_ERROR, str(err))
            raise AirflowFailException(
                f"{err}; reported to Serverless Workflow as {INVALID_OUTPUT_ERROR} ({summary['outcome']})"
            ) from err

        hook = ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)
        outcome, event_id = "succeeded", None
        try:
            event_id = hook.report_task_succeeded(target.task_token, output_text)
            self.log.info(
                "Reported task succeeded for %s, event %s (%d bytes of output)",
                target.where(run_id),
                event_id,
                len(output_text.encode("utf-8")),
            )
        except ServerlessWorkflowTaskAlreadyCompletedError:
            outcome = "already_completed"
            self.log.info(
                "The task of %s was already completed: counting it as reported", target.where(run_id)
            )
        except ServerlessWorkflowInvalidTaskTokenError as err:
            raise AirflowFailException(
                f"{where}: Serverless Workflow rejected the task token ({err.code or 'InvalidArgument'}); "
                "nothing was reported and the message is kept"
            ) from err
        deleted = (
            delete_reported_message(target, log=self.log, run_id=run_id) if self.delete_message else False
        )
        summary = target.summary(outcome, event_id, deleted)
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
        return summary

    def _report_failure(
        self, context: Context, target: ReportTarget, error: str, cause: str
    ) -> dict[str, Any]:
        run_id = context.get("run_id")
        try:
            summary = report_failure(
                target,
                error=error,
                cause=cause,
                fnf_conn_id=self.fnf_conn_id,
                log=self.log,
                run_id=run_id,
                delete_message=self.delete_message,
            )
        except ServerlessWorkflowInvalidTaskTokenError as err:
            raise AirflowFailException(
                f"Task {self.task_id}, {target.where(run_id)}: Serverless Workflow rejected the task token "
                f"({err.code or 'InvalidArgument'}) while reporting {error}; the message is kept"
            ) from err
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
        return summary


def _is_mapped(task: Any) -> bool:
    return bool(getattr(task, "is_mapped", False)) or type(task).__name__ == "MappedOperator"


# --- the reverse direction -----------------------------------------------------------------
class ServerlessWorkflowStartExecutionOperator(BaseOperator):
    """Start an execution of a Serverless Workflow flow, and optionally wait for it to end.

    Without waiting it returns the execution name. Waiting, it returns the execution's Output
    (parsed JSON) and fails with the execution's error and cause when it ends Failed, TimedOut or
    Stopped. The execution name is also pushed under the XCom key ``execution_name``, and the
    task gets a "Serverless Workflow execution" link.

    An ``execution_name`` that already exists is attached to rather than failed: a retried task
    waits for the execution its first try started.

    :param flow_name: the flow (templated).
    :param execution_input: the Input (templated): a dict or a JSON object string, at most 32 KiB.
    :param execution_name: the execution name (templated); None lets the service choose one.
    :param fnf_conn_id: the ``fnf`` connection (templated).
    :param wait_for_completion: wait for the execution to end (default False).
    :param wait_time_seconds: ``DescribeExecution`` long poll per call while waiting, 0..60.
    :param poll_interval: the least seconds between two ``DescribeExecution`` calls.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("flow_name", "execution_input", "execution_name", "fnf_conn_id")
    template_fields_renderers = {"execution_input": "json"}
    operator_extra_links = (ServerlessWorkflowExecutionLink(),)
    ui_color = "#ffb366"

    def __init__(
        self,
        *,
        flow_name: str,
        execution_input: dict[str, Any] | str | None = None,
        execution_name: str | None = None,
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
        self.fnf_conn_id = fnf_conn_id
        self.wait_for_completion = wait_for_completion
        self.wait_time_seconds = wait_time_seconds
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> ServerlessWorkflowHook:
        return ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)

    def _start(self, where: str) -> dict[str, Any]:
        input_text = json_object_text(self.execution_input, what="the execution input", where=where)
        try:
            return self.hook.start_execution(self.flow_name, input_text, self.execution_name or None)
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
            if execution.get("Status") not in RUNNING_STATUSES:
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
            status = execution.get("Status")
            if status not in RUNNING_STATUSES:
                return raise_for_execution_event(execution_event(self.hook, execution), where=where)
            self.log.info("Execution %s of flow %s is %s", name, self.flow_name, status)
            remaining = self.poll_interval - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        output = raise_for_execution_event(event, where=f"Task {self.task_id}, flow {self.flow_name}")
        self.log.info(
            "Execution %s of flow %s succeeded", (event or {}).get("execution_name"), self.flow_name
        )
        return output

"""Reporting a task token's result: what the report operator and the failure callbacks share.

- **Output and Cause**: :func:`json_object_text` (an Output or Input as the JSON text of an
  object within the service generation's limit: 32 KiB Serverless Workflow, 64 KiB CloudFlow;
  :func:`check_event_size` says which limit and by how much) and :func:`truncate_cause` (a Cause
  cut to 4,096 characters with one visible marker). The hook applies both to every call, with
  its connection's limits, so whatever reaches the service fits.
- **Failed tasks**: :func:`collect_failed_tasks` reads a run's failed task instances and the error
  :func:`airflow_provider_fnf.callbacks.record_task_error` recorded for each; :func:`error_name_for`
  and :func:`failure_cause` turn them into the error name and the Cause of ReportTaskFailed.
- **Report targets**: a :class:`ReportTarget` is a task token and the message that carried it;
  :func:`report_success` and :func:`report_failure` report, count TaskAlreadyCompleted as
  reported, and only then acknowledge (delete) the message through
  :class:`~airflow_provider_fnf.acknowledgement.MNSMessageAcknowledger`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_fnf.acknowledgement import (
    POISON_POLICIES,
    MNSMessageAcknowledger,
    PoisonPolicy,
    SettleOutcome,
)
from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowOutputError,
    ServerlessWorkflowTaskAlreadyCompletedError,
)
from airflow_provider_fnf.limits import (
    CLOUDFLOW_LIMITS,
    FNF_MAX_CAUSE_CHARS,
    FNF_MAX_ERROR_CHARS,
    SERVERLESS_WORKFLOW_LIMITS,
    FnFServiceLimits,
)
from airflow_provider_fnf.masking import mask_task_token, redact_text
from airflow_provider_fnf.messages import decode_task_token

if TYPE_CHECKING:
    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

DEFAULT_TASK_FAILED_ERROR = "Airflow.TaskFailed"
"""The error name reported when an upstream task failed: what a flow's ``retry``/``catch`` match."""
DEFAULT_TIMEOUT_ERROR = "Airflow.Timeout"
"""The error name reported for a task timeout (``AirflowTaskTimeout``) or a DAG run timeout."""
INVALID_OUTPUT_ERROR = "Airflow.InvalidOutput"
"""The error name reported when the Output is not a JSON object or is larger than the service's
limit (32 KiB Serverless Workflow, 64 KiB CloudFlow)."""
DEFAULT_ERROR_NAMES: dict[str, str] = {"AirflowTaskTimeout": DEFAULT_TIMEOUT_ERROR}
"""Exception type -> error name used unless the author maps the type otherwise."""

TASK_ERROR_XCOM_KEY = "serverless_workflow_task_error"
"""XCom key under which :func:`airflow_provider_fnf.callbacks.record_task_error` stores a failed
task's exception (type names and message), read back when the failure is reported."""
REPORT_XCOM_KEY = "serverless_workflow_report"
"""XCom key under which the report operator records what it reported, success or failure."""

TRUNCATION_MARKER = "...[truncated {n} chars]"
"""Ends a Cause cut down to Serverless Workflow's 4,096 characters; ``n`` is how many were cut."""
EMPTY_CAUSE = "(no cause)"

ReportOutcome = Literal["succeeded", "failed", "already_completed", "rejected_token"]
"""What a report did: the service took it as succeeded or failed, the token was reported before,
or the service rejected the token (no report can ever succeed: the message was settled by its
poison policy)."""

MESSAGE_FIELDS = (
    "task_token",
    "queue_name",
    "receipt_handle",
    "message_id",
    "mns_conn_id",
    "flow_name",
    "execution_name",
    "raw_body",
    "poison_policy",
    "dead_letter_queue_name",
    "body_encoding",
)
"""What a report target reads from a parsed message (:data:`airflow_provider_fnf.messages.MESSAGE_KEYS`)."""
FAILED_STATES = frozenset({"failed", "upstream_failed"})


# --- Output, Cause, error names -------------------------------------------------------------
def check_error_name(name: str, *, where: str) -> str:
    """An error name as ReportTaskFailed takes it: 1..128 characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > FNF_MAX_ERROR_CHARS:
        raise FnFConfigurationError(
            f"{where}: an error name must be 1..{FNF_MAX_ERROR_CHARS} characters (got {name!r})"
        )
    return name


def truncate_cause(cause: str | None, limit: int = FNF_MAX_CAUSE_CHARS) -> str:
    """``cause`` within ``limit`` characters, never empty; a cut one ends in
    ``...[truncated N chars]``, N being how many characters were cut."""
    cause = cause or EMPTY_CAUSE
    if len(cause) <= limit:
        return cause
    dropped = len(cause) - limit
    while True:  # the marker's own length depends on N
        marker = TRUNCATION_MARKER.format(n=dropped)
        keep = limit - len(marker)
        if len(cause) - keep == dropped:
            return cause[:keep] + marker
        dropped = len(cause) - keep


def json_object_text(
    value: Any,
    *,
    what: str = "the Output",
    where: str | None = None,
    limits: FnFServiceLimits = SERVERLESS_WORKFLOW_LIMITS,
    conn_id: str | None = None,
) -> str:
    """``value`` as the compact JSON text of an object within ``limits.max_event_bytes`` (UTF-8):
    the service generation's limit, 32 KiB Serverless Workflow (the default), 64 KiB CloudFlow
    (:attr:`ServerlessWorkflowHook.limits <airflow_provider_fnf.hooks.fnf.ServerlessWorkflowHook.limits>`
    gives a connection's).

    ``value`` is a mapping, or a string (or bytes) holding a JSON object; None means ``{}``.

    :raises ServerlessWorkflowOutputError: naming ``what`` (and ``where``) when it is not a JSON
        object, cannot be written as JSON, or is too large (see :func:`check_event_size`).
    """
    prefix = f"{where}: " if where else ""
    if value is None:
        return "{}"
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as err:
            raise ServerlessWorkflowOutputError(f"{prefix}{what} is not valid JSON ({err})") from None
        if not isinstance(parsed, dict):
            raise ServerlessWorkflowOutputError(
                f"{prefix}{what} must be a JSON object (it becomes the step's $local), "
                f"got JSON {type(parsed).__name__}"
            )
        value = parsed
    if not isinstance(value, Mapping):
        raise ServerlessWorkflowOutputError(
            f"{prefix}{what} must be a JSON object (a dict or its JSON text), got {type(value).__name__}"
        )
    try:
        text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ServerlessWorkflowOutputError(f"{prefix}{what} cannot be written as JSON ({err})") from None
    check_event_size(text, what=f"{prefix}{what}", limits=limits, conn_id=conn_id)
    return text


def check_event_size(
    text: str, *, what: str, limits: FnFServiceLimits = SERVERLESS_WORKFLOW_LIMITS, conn_id: str | None = None
) -> None:
    """Raise :class:`ServerlessWorkflowOutputError` when the JSON ``text`` is larger than the
    service generation's event limit, saying which limit and by how many bytes (and, over
    Serverless Workflow's 32 KiB but within CloudFlow's 64 KiB, how to choose CloudFlow's)."""
    size = len(text.encode("utf-8"))
    limit = limits.max_event_bytes
    if size <= limit:
        return
    connection = f" (connection {conn_id!r})" if conn_id else ""
    hint = (
        f"; CloudFlow accepts {CLOUDFLOW_LIMITS.max_event_bytes:,} bytes: if the flow runs on CloudFlow, "
        'set extra "service": "cloudflow" on the fnf connection'
        if size <= CLOUDFLOW_LIMITS.max_event_bytes
        else ""
    )
    raise ServerlessWorkflowOutputError(
        f"{what} is {size:,} bytes of JSON, {size - limit:,} bytes over {limits.service}'s limit of "
        f"{limit:,} bytes per event{connection}: keep large results elsewhere (object storage, a "
        f"database) and report a reference to them{hint}"
    )


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


# --- what Airflow knows about a run --------------------------------------------------------
def state_key_owner(key: str, task_ids: Sequence[str]) -> tuple[str, int] | None:
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
        owner = state_key_owner(key, task_ids)
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


# --- report targets ---------------------------------------------------------------------------
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
    raw_body: str | None = None
    poison_policy: PoisonPolicy = "leave"
    """How the message is settled should the service reject its token: the receiving side's
    policy, carried in the message (messages from before it was carried are left)."""
    dead_letter_queue_name: str | None = None
    body_encoding: str = "raw"

    @classmethod
    def from_message(cls, message: Mapping[str, Any], **overrides: Any) -> ReportTarget:
        """From a parsed message dict (or a run's conf), explicit non-None ``overrides`` winning."""
        values: dict[str, Any] = {name: message.get(name) for name in MESSAGE_FIELDS}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["mns_conn_id"] = values.get("mns_conn_id") or "mns_default"
        if values.get("poison_policy") not in POISON_POLICIES:
            values["poison_policy"] = "leave"
        if values["poison_policy"] == "dead_letter" and not values.get("dead_letter_queue_name"):
            values["poison_policy"] = "leave"
        values["body_encoding"] = values.get("body_encoding") or "raw"
        target = cls(**values)
        mask_task_token(target.task_token)
        if target.task_token and not (target.flow_name and target.execution_name):
            flow_name, execution_name = decode_task_token(target.task_token)
            target.flow_name = target.flow_name or flow_name
            target.execution_name = target.execution_name or execution_name
        return target

    def acknowledger(self) -> MNSMessageAcknowledger:
        return MNSMessageAcknowledger.for_connection(self.mns_conn_id, self.body_encoding)

    def where(self, run_id: str | None) -> str:
        return f"run {run_id or '(unknown)'}, message {self.message_id or '(none)'}"

    def delivery(self) -> dict[str, Any]:
        """The message as :class:`~airflow_provider_fnf.acknowledgement.MNSMessageAcknowledger` settles it."""
        return {
            "message_id": self.message_id,
            "queue_name": self.queue_name,
            "receipt_handle": self.receipt_handle,
            "raw_body": self.raw_body,
        }

    def summary(
        self, outcome: ReportOutcome, event_id: int | None, deleted: bool, **extra: Any
    ) -> dict[str, Any]:
        """JSON-safe record of a report (never the token)."""
        return {
            **extra,
            "outcome": outcome,
            "event_id": event_id,
            "message_id": self.message_id,
            "queue_name": self.queue_name,
            "flow_name": self.flow_name,
            "execution_name": self.execution_name,
            "deleted": deleted,
        }


def acknowledge_reported(
    target: ReportTarget,
    *,
    log: Any,
    run_id: str | None = None,
    acknowledger: MNSMessageAcknowledger | None = None,
) -> bool:
    """Delete the message of a task token that has been reported; return whether it was deleted.

    A stale receipt handle is not an error (see :mod:`airflow_provider_fnf.acknowledgement`):
    the newer delivery is reconciled by the dispatch. Other errors propagate.
    """
    if not target.queue_name:
        log.warning("Not deleting message %s (%s): no queue name", target.message_id, target.where(run_id))
        return False
    acknowledger = acknowledger or target.acknowledger()
    outcome: SettleOutcome = acknowledger.ack(target.delivery())
    return outcome == "deleted"


def report_success(
    target: ReportTarget,
    output_text: str,
    *,
    fnf_hook: ServerlessWorkflowHook,
    log: Any,
    run_id: str | None = None,
    delete_message: bool = True,
) -> dict[str, Any]:
    """ReportTaskSucceeded with ``output_text`` then delete the message; TaskAlreadyCompleted
    counts as reported. Any other error propagates and the message is kept."""

    def send(token: str) -> int:
        event_id = fnf_hook.report_task_succeeded(token, output_text)
        log.info(
            "Reported task succeeded for %s, event %s (%d bytes of output)",
            target.where(run_id),
            event_id,
            len(output_text.encode("utf-8")),
        )
        return event_id

    return _report_then_acknowledge(
        target, "succeeded", send, log=log, run_id=run_id, delete_message=delete_message
    )


def report_failure(
    target: ReportTarget,
    *,
    error: str,
    cause: str,
    fnf_hook: ServerlessWorkflowHook,
    log: Any,
    run_id: str | None = None,
    delete_message: bool = True,
    acknowledger: MNSMessageAcknowledger | None = None,
) -> dict[str, Any]:
    """ReportTaskFailed for ``target`` then delete its message; TaskAlreadyCompleted counts as
    reported. Any other error propagates and the message is kept."""

    def send(token: str) -> int:
        event_id = fnf_hook.report_task_failed(token, error, redact_text(cause))
        log.info("Reported task failed (%s) for %s, event %s", error, target.where(run_id), event_id)
        return event_id

    return _report_then_acknowledge(
        target,
        "failed",
        send,
        log=log,
        run_id=run_id,
        delete_message=delete_message,
        acknowledger=acknowledger,
    )


def _report_then_acknowledge(
    target: ReportTarget,
    outcome: ReportOutcome,
    send: Callable[[str], int],
    *,
    log: Any,
    run_id: str | None,
    delete_message: bool,
    acknowledger: MNSMessageAcknowledger | None = None,
) -> dict[str, Any]:
    if not target.task_token:
        raise FnFConfigurationError(f"{target.where(run_id)}: no task token to report with")
    event_id = None
    try:
        event_id = send(target.task_token)
    except ServerlessWorkflowTaskAlreadyCompletedError:
        outcome = "already_completed"
        log.info("The task of %s was already completed: counting it as reported", target.where(run_id))
    except ServerlessWorkflowInvalidTaskTokenError as error:
        # delete_message=False: whoever asked for it settles the message, a poison one too.
        settling = target if delete_message else dataclasses.replace(target, poison_policy="leave")
        return settle_rejected_token(settling, error, log=log, acknowledger=acknowledger)
    deleted = (
        acknowledge_reported(target, log=log, run_id=run_id, acknowledger=acknowledger)
        if delete_message
        else False
    )
    return target.summary(outcome, event_id, deleted)


# --- a rejected task token ----------------------------------------------------------------------
def settle_rejected_token(
    target: ReportTarget,
    error: ServerlessWorkflowInvalidTaskTokenError,
    *,
    log: Any,
    acknowledger: MNSMessageAcknowledger | None = None,
) -> dict[str, Any]:
    """The service rejected the token: no report can ever succeed, so the message follows its
    poison policy now (dead-letter the raw body verbatim, delete, or leave) instead of coming
    back after every lease. Errors settling it propagate: it comes back and is settled then."""
    settled: SettleOutcome | None = None
    if target.queue_name:
        acknowledger = acknowledger or target.acknowledger()
        settled = acknowledger.settle_poison(
            target.delivery(), target.poison_policy, target.dead_letter_queue_name
        )
    log_rejected_token(
        log,
        error,
        message_id=target.message_id,
        queue_name=target.queue_name,
        policy=target.poison_policy,
        settled=settled,
    )
    return target.summary(
        "rejected_token",
        None,
        settled in ("deleted", "dead_lettered"),
        error_code=error.code,
        poison_policy=target.poison_policy,
        settled=settled,
    )


def rejected_token_text(summary: Mapping[str, Any]) -> str:
    """What a task that learned of a rejected token says when it fails (from its summary)."""
    return (
        f"Serverless Workflow rejected the task token ({summary.get('error_code') or 'rejected'}); nothing "
        f"was reported and the message was {summary.get('settled') or 'not settled'} (poison_policy "
        f"{summary.get('poison_policy')})"
    )


def log_rejected_token(
    log: Any,
    error: ServerlessWorkflowInvalidTaskTokenError,
    *,
    message_id: str | None,
    queue_name: str | None,
    policy: PoisonPolicy,
    settled: SettleOutcome | None = None,
) -> None:
    """The one log line of a rejected task token: which message, the service's code, what was
    done, what to check."""
    log.error(
        "Serverless Workflow rejected the task token of message %s on MNS queue %s (%s): no report can "
        "succeed, so it follows poison_policy %s (%s). Check that the message was sent by a "
        "waitForCallback step of a flow in the account and region of connection %s, and that its "
        "token reached the queue unaltered under one of the token_keys",
        message_id,
        queue_name,
        error.code or "rejected",
        policy,
        settled or "nothing to settle: no queue",
        error.conn_id,
    )

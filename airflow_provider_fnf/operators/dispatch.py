"""One DAG run per MNS task message.

:class:`MNSDispatchMessagesOperator` starts one run of a worker DAG for every message it is given,
with the run id ``mns__{queue_name}__{message_id}`` and the parsed message as ``dag_run.conf``.
All runs are started from a single task process (one Execution API call each), which is what
makes it faster than a mapped ``TriggerDagRunOperator`` (one task process per message); see
``docs/dispatch-modes.md``.

The fixed run id makes a redelivered message reconcile instead of starting a second run:

=====================  =========================================================================
worker run             what happens to the redelivered message
=====================  =========================================================================
none (gone)            a run is started again
queued / running       nothing more: the receipt already renewed its processing lease
success                the run reported its task: the message is deleted (the report succeeded
                       but its delete did not, e.g. the receipt handle had changed)
failed                 ``failed_run_policy="report_failed"``: the task is reported failed with
                       ``failed_run_error_name`` (TaskAlreadyCompleted counts as done), then the
                       message is deleted; a token the service rejects settles the message by
                       the poison policy it carries; ``"leave"``: kept (clear the run to retry it)
=====================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from airflow.sdk import BaseOperator

from airflow_provider_fnf.acknowledgement import MNSMessageAcknowledger
from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.masking import mask_task_token
from airflow_provider_fnf.messages import dedupe_messages, messages_from_asset_events, run_id_for
from airflow_provider_fnf.reporting import ReportTarget, report_failure

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
    from airflow_provider_fnf.hooks.mns import MNSHook

FAILED_RUN_ERROR_NAME = "Airflow.DagRunFailed"
FailedRunPolicy = Literal["report_failed", "leave"]
FAILED_RUN_POLICIES: tuple[FailedRunPolicy, ...] = get_args(FailedRunPolicy)
DispatchOutcome = Literal["started", "running", "deleted", "reported_failed", "rejected_token", "left"]
"""What dispatching one message did: the keys of the operator's summary."""
DISPATCH_OUTCOMES: tuple[DispatchOutcome, ...] = get_args(DispatchOutcome)
_RUNNING_STATES = frozenset({"queued", "running"})


class DagRunClient(Protocol):
    """How the operator starts worker runs and reads their state."""

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
        """Start a run; True when it was created, False when a run with this id exists."""

    def state(self, dag_id: str, run_id: str) -> str:
        """The state of an existing run (``queued``, ``running``, ``success``, ``failed``)."""


class TaskSDKDagRunClient:
    """Starts runs and reads states through the Task SDK's supervisor: the calls
    ``TriggerDagRunOperator`` makes, without raising out of the task for every run."""

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

        response = task_runner.SUPERVISOR_COMMS.send(
            TriggerDagRun(dag_id=dag_id, run_id=run_id, conf=conf, logical_date=None, note=note)
        )
        if isinstance(response, ErrorResponse):
            if response.error == ErrorType.DAGRUN_ALREADY_EXISTS:
                return False
            raise FnFProviderError(
                f"Airflow refused to start run {run_id!r} of DAG {dag_id!r}: {response.error.value} {response.detail}"
            )
        return True

    def state(self, dag_id: str, run_id: str) -> str:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
        # An enum of the Task SDK's API models: str() would give "DagRunState.RUNNING".
        return str(getattr(state, "value", state))


class MNSDispatchMessagesOperator(BaseOperator):
    """
    Start one run of ``trigger_dag_id`` per MNS task message; reconcile redelivered messages.

    Each run gets the run id ``mns__{queue_name}__{message_id}``
    (:func:`airflow_provider_fnf.messages.run_id_for`) and the parsed message dict as its
    ``dag_run.conf``, which is what the report operator reads by default. The operator returns a
    summary (XCom): ``{"started": [...], "running": [...], "deleted": [...], "reported_failed": [...],
    "rejected_token": [...], "left": [...]}`` of run ids. Messages it could not settle (an API
    error) make it fail after all others were handled; a retry is safe, everything it does is
    idempotent.

    :param trigger_dag_id: the worker DAG to run once per message. (templated)
    :param messages: the parsed messages, usually an ``MNSSensor``'s ``output``. None (default):
        the messages of the run's ``triggering_asset_events`` (a DAG scheduled on an asset watched
        by ``MNSMessageTrigger``). (templated)
    :param fnf_conn_id: Serverless Workflow connection id, to report a failed run's task.
    :param failed_run_policy: what to do with a redelivered message whose run failed:
        ``report_failed`` (report the task failed, then delete the message) or ``leave``.
    :param failed_run_error_name: the error name reported for a failed run.
    :param note: a note set on every run started.
    """

    template_fields: Sequence[str] = ("trigger_dag_id", "messages")
    ui_color = "#ff6a00"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        messages: Any = None,
        fnf_conn_id: str = "fnf_default",
        failed_run_policy: FailedRunPolicy = "report_failed",
        failed_run_error_name: str = FAILED_RUN_ERROR_NAME,
        note: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if failed_run_policy not in FAILED_RUN_POLICIES:
            raise ValueError(
                f"failed_run_policy of {self.task_id} must be one of {', '.join(FAILED_RUN_POLICIES)}, "
                f"got {failed_run_policy!r}"
            )
        self.trigger_dag_id = trigger_dag_id
        self.messages = messages
        self.fnf_conn_id = fnf_conn_id
        self.failed_run_policy = failed_run_policy
        self.failed_run_error_name = failed_run_error_name
        self.note = note
        self.dag_runs: DagRunClient = TaskSDKDagRunClient()
        self._mns_hooks: dict[str, MNSHook] = {}
        self._fnf_hook: ServerlessWorkflowHook | None = None

    # -- hooks ---------------------------------------------------------------------------------
    def mns_hook(self, conn_id: str) -> MNSHook:
        if conn_id not in self._mns_hooks:
            from airflow_provider_fnf.hooks.mns import MNSHook

            self._mns_hooks[conn_id] = MNSHook(conn_id)
        return self._mns_hooks[conn_id]

    def acknowledger(self, conn_id: str) -> MNSMessageAcknowledger:
        return MNSMessageAcknowledger(self.mns_hook(conn_id))

    @property
    def fnf_hook(self) -> ServerlessWorkflowHook:
        if self._fnf_hook is None:
            from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

            self._fnf_hook = ServerlessWorkflowHook(self.fnf_conn_id)
        return self._fnf_hook

    # -- execution -----------------------------------------------------------------------------
    def _messages(self, context: Context) -> list[dict[str, Any]]:
        if self.messages is None:
            return messages_from_asset_events(context.get("triggering_asset_events"))
        if isinstance(self.messages, Mapping):
            raw: list[Any] = [self.messages]
        elif isinstance(self.messages, list | tuple):
            raw = list(self.messages)
        else:
            raise ValueError(
                f"{self.task_id}: messages must be a list of parsed MNS messages (an MNSSensor's output), "
                f"got {type(self.messages).__name__}"
            )
        for index, message in enumerate(raw):
            if (
                not isinstance(message, Mapping)
                or not message.get("message_id")
                or not message.get("queue_name")
            ):
                raise ValueError(
                    f"{self.task_id}: message #{index} is not a parsed MNS message (needs message_id and "
                    "queue_name; see airflow_provider_fnf.messages.parse_message)"
                )
        return dedupe_messages(raw)

    def execute(self, context: Context) -> dict[str, list[str]]:
        messages = self._messages(context)
        summary: dict[str, list[str]] = {outcome: [] for outcome in DISPATCH_OUTCOMES}
        errors: list[str] = []
        for message in messages:
            mask_task_token(message.get("task_token"))
            run_id = run_id_for(message["queue_name"], message["message_id"])
            try:
                outcome = self.dispatch_one(message, run_id)
            except Exception as error:  # collected and raised below, after every other message
                self.log.error(
                    "Could not dispatch message %s (run %s): %s", message["message_id"], run_id, error
                )
                errors.append(f"{message['message_id']}: {error}")
                continue
            summary[outcome].append(run_id)
        self.log.info(
            "Dispatched %d message(s) to DAG %s: %d started, %d still running, %d deleted, "
            "%d reported failed, %d with a rejected task token, %d left",
            len(messages),
            self.trigger_dag_id,
            len(summary["started"]),
            len(summary["running"]),
            len(summary["deleted"]),
            len(summary["reported_failed"]),
            len(summary["rejected_token"]),
            len(summary["left"]),
        )
        if errors:
            raise FnFProviderError(
                f"{self.task_id}: {len(errors)} of {len(messages)} message(s) could not be dispatched to DAG "
                f"{self.trigger_dag_id!r} (they stay leased and are retried): " + "; ".join(errors)
            )
        return summary

    def dispatch_one(self, message: dict[str, Any], run_id: str) -> DispatchOutcome:
        """Start the message's run, or reconcile with the run that exists. Returns the summary key."""
        mid = message["message_id"]
        if self.dag_runs.trigger(self.trigger_dag_id, run_id, dict(message), self.note):
            self.log.info("Started run %s of DAG %s for message %s", run_id, self.trigger_dag_id, mid)
            return "started"
        state = self.dag_runs.state(self.trigger_dag_id, run_id)
        if state in _RUNNING_STATES:
            self.log.info(
                "Message %s was delivered again (%d times) while its run %s is %s: no second run; its "
                "lease was renewed on receipt",
                mid,
                message.get("dequeue_count", 0),
                run_id,
                state,
            )
            return "running"
        acknowledger = self.acknowledger(message["mns_conn_id"])
        if state == "success":
            self.log.info("Run %s of message %s succeeded before: deleting the message", run_id, mid)
            acknowledger.ack(message)
            return "deleted"
        if self.failed_run_policy == "leave":
            self.log.warning(
                "Run %s of message %s is %s: the message is left (failed_run_policy='leave'); clear the "
                "run to work on it again",
                run_id,
                mid,
                state,
            )
            return "left"
        target = ReportTarget.from_message(message)
        if not target.task_token:
            acknowledger.ack(message)
            return "reported_failed"
        summary = report_failure(
            target,
            error=self.failed_run_error_name,
            cause=f"Airflow DAG run {self.trigger_dag_id}/{run_id} for MNS message {mid} ended {state}.",
            fnf_hook=self.fnf_hook,
            log=self.log,
            run_id=run_id,
            acknowledger=acknowledger,
        )
        return "rejected_token" if summary["outcome"] == "rejected_token" else "reported_failed"

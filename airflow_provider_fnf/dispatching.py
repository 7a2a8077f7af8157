"""One DAG run per MNS task message: the rules, whoever starts the runs.

:class:`MNSMessageDispatcher` starts one run of a worker DAG for every message it is given,
with the run id ``mns__{queue_name}__{message_id}`` and the parsed message as ``dag_run.conf``.
Two callers use it, each with its own way of starting runs (a :class:`DagRunClient`):

- :class:`~airflow_provider_fnf.operators.dispatch.MNSDispatchMessagesOperator`, a task of a DAG
  scheduled on a watched asset, through the Task SDK's supervisor;
- :class:`~airflow_provider_fnf.triggers.dispatch.MNSDispatchTrigger`, in the triggerer, through
  Airflow's REST API (:class:`~airflow_provider_fnf.hooks.airflow_api.AirflowAPIHook`): no run of
  its own between the message and its worker run.

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

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from airflow_provider_fnf.acknowledgement import MNSMessageAcknowledger
from airflow_provider_fnf.masking import mask_task_token
from airflow_provider_fnf.messages import run_id_for
from airflow_provider_fnf.reporting import ReportTarget, report_failure

if TYPE_CHECKING:
    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
    from airflow_provider_fnf.hooks.mns import MNSHook

FAILED_RUN_ERROR_NAME = "Airflow.DagRunFailed"
FailedRunPolicy = Literal["report_failed", "leave"]
FAILED_RUN_POLICIES: tuple[FailedRunPolicy, ...] = get_args(FailedRunPolicy)
DispatchOutcome = Literal["started", "running", "deleted", "reported_failed", "rejected_token", "left"]
"""What dispatching one message did: the keys of the summary."""
DISPATCH_OUTCOMES: tuple[DispatchOutcome, ...] = get_args(DispatchOutcome)
_RUNNING_STATES = frozenset({"queued", "running"})


class DagRunClient(Protocol):
    """How a dispatcher starts worker runs and reads their state."""

    def trigger_dag_run(self, dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
        """Start a run; True when it was created, False when a run with this id exists."""

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        """The state of an existing run (``queued``, ``running``, ``success``, ``failed``)."""


def check_failed_run_policy(policy: str, where: str) -> None:
    if policy not in FAILED_RUN_POLICIES:
        raise ValueError(
            f"failed_run_policy of {where} must be one of {', '.join(FAILED_RUN_POLICIES)}, got {policy!r}"
        )


class MNSMessageDispatcher:
    """
    Start (or reconcile) one run of ``trigger_dag_id`` per message.

    :param trigger_dag_id: the worker DAG.
    :param dag_runs: how runs are started and read.
    :param fnf_conn_id: Serverless Workflow connection id, to report a failed run's task.
    :param failed_run_policy: ``report_failed`` or ``leave`` (see the module's table).
    :param failed_run_error_name: the error name reported for a failed run.
    :param note: a note set on every run started.
    :param log: where each message's outcome is logged.
    :param mask_token: registers each message's task token with the secrets masker before
        anything is logged; a long-lived process (the triggerer) passes
        :func:`~airflow_provider_fnf.masking.mask_task_token_by_shape`, which does not grow it.
    """

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        dag_runs: DagRunClient,
        fnf_conn_id: str = "fnf_default",
        failed_run_policy: FailedRunPolicy = "report_failed",
        failed_run_error_name: str = FAILED_RUN_ERROR_NAME,
        note: str | None = None,
        log: logging.Logger | Any = None,
        mask_token: Callable[[str | None], object] = mask_task_token,
    ) -> None:
        check_failed_run_policy(failed_run_policy, f"the dispatcher of DAG {trigger_dag_id!r}")
        self.trigger_dag_id = trigger_dag_id
        self.dag_runs = dag_runs
        self.fnf_conn_id = fnf_conn_id
        self.failed_run_policy = failed_run_policy
        self.failed_run_error_name = failed_run_error_name
        self.note = note
        self.log = log or logging.getLogger(__name__)
        self.mask_token = mask_token
        self._mns_hooks: dict[str, MNSHook] = {}
        self._fnf_hook: ServerlessWorkflowHook | None = None

    # -- hooks, built on first use in the calling thread ---------------------------------------
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

    # -- dispatching ---------------------------------------------------------------------------
    def dispatch(self, messages: Sequence[dict[str, Any]]) -> tuple[dict[str, list[str]], list[str]]:
        """Every message, one after the other: the summary (outcome -> run ids) and the errors of
        the messages that could not be settled (they stay leased and come back)."""
        summary: dict[str, list[str]] = {outcome: [] for outcome in DISPATCH_OUTCOMES}
        errors: list[str] = []
        for message in messages:
            self.mask_token(message.get("task_token"))
            run_id = run_id_for(message["queue_name"], message["message_id"])
            try:
                outcome = self.dispatch_one(message, run_id)
            except Exception as error:  # collected for the caller, after every other message
                self.log.error(
                    "Could not dispatch message %s (run %s of DAG %s): %s",
                    message["message_id"],
                    run_id,
                    self.trigger_dag_id,
                    error,
                )
                errors.append(f"{message['message_id']}: {error}")
                continue
            summary[outcome].append(run_id)
        return summary, errors

    def log_summary(self, messages: Sequence[dict[str, Any]], summary: dict[str, list[str]]) -> None:
        queues = ", ".join(sorted({str(m.get("queue_name")) for m in messages})) or "-"
        self.log.info(
            "Dispatched %d message(s) from MNS queue %s to DAG %s: %d started, %d still running, "
            "%d deleted, %d reported failed, %d with a rejected task token, %d left",
            len(messages),
            queues,
            self.trigger_dag_id,
            len(summary["started"]),
            len(summary["running"]),
            len(summary["deleted"]),
            len(summary["reported_failed"]),
            len(summary["rejected_token"]),
            len(summary["left"]),
        )

    def dispatch_one(self, message: dict[str, Any], run_id: str) -> DispatchOutcome:
        """Start the message's run, or reconcile with the run that exists. Returns the summary key."""
        mid = message["message_id"]
        if self.dag_runs.trigger_dag_run(self.trigger_dag_id, run_id, dict(message), self.note):
            self.log.info("Started run %s of DAG %s for message %s", run_id, self.trigger_dag_id, mid)
            return "started"
        state = self.dag_runs.dag_run_state(self.trigger_dag_id, run_id)
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

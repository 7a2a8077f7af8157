"""One DAG run per MNS task message, from a task.

:class:`MNSDispatchMessagesOperator` starts one run of a worker DAG for every message it is given
(the rules, reconciliation of redelivered messages included, are
:class:`airflow_provider_fnf.dispatching.MNSMessageDispatcher`'s). All runs are started from a
single task process (one Execution API call each), which is what makes it faster than a mapped
``TriggerDagRunOperator`` (one task process per message); see ``docs/dispatch-modes.md``.
:class:`~airflow_provider_fnf.triggers.dispatch.MNSDispatchTrigger` starts the same runs from the
triggerer, without a run of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_fnf.dispatching import (
    DISPATCH_OUTCOMES,
    FAILED_RUN_ERROR_NAME,
    FAILED_RUN_POLICIES,
    DagRunClient,
    DispatchOutcome,
    FailedRunPolicy,
    MNSMessageDispatcher,
    check_failed_run_policy,
)
from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.messages import dedupe_messages, messages_from_asset_events

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DISPATCH_OUTCOMES",
    "FAILED_RUN_ERROR_NAME",
    "FAILED_RUN_POLICIES",
    "DispatchOutcome",
    "MNSDispatchMessagesOperator",
    "TaskSDKDagRunClient",
]


class TaskSDKDagRunClient:
    """Starts runs and reads states through the Task SDK's supervisor: the calls
    ``TriggerDagRunOperator`` makes, without raising out of the task for every run."""

    def trigger_dag_run(self, dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
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

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
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
        check_failed_run_policy(failed_run_policy, self.task_id)
        self.trigger_dag_id = trigger_dag_id
        self.messages = messages
        self.fnf_conn_id = fnf_conn_id
        self.failed_run_policy = failed_run_policy
        self.failed_run_error_name = failed_run_error_name
        self.note = note
        self.dag_runs: DagRunClient = TaskSDKDagRunClient()

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

    @cached_property
    def dispatcher(self) -> MNSMessageDispatcher:
        """Built on first use, with :attr:`dag_runs` as it is then."""
        return MNSMessageDispatcher(
            trigger_dag_id=self.trigger_dag_id,
            dag_runs=self.dag_runs,
            fnf_conn_id=self.fnf_conn_id,
            failed_run_policy=self.failed_run_policy,
            failed_run_error_name=self.failed_run_error_name,
            note=self.note,
            log=self.log,
        )

    def execute(self, context: Context) -> dict[str, list[str]]:
        messages = self._messages(context)
        dispatcher = self.dispatcher
        summary, errors = dispatcher.dispatch(messages)
        dispatcher.log_summary(messages, summary)
        if errors:
            raise FnFProviderError(
                f"{self.task_id}: {len(errors)} of {len(messages)} message(s) could not be dispatched to DAG "
                f"{self.trigger_dag_id!r} (they stay leased and are retried): " + "; ".join(errors)
            )
        return summary

"""One worker DAG run per MNS task message, started from the triggerer.

:class:`MNSDispatchTrigger` is an ``AssetWatcher`` trigger that never fires an event: it
receives task messages as :class:`~airflow_provider_fnf.triggers.mns.MNSMessageTrigger` does
(same receive pipeline, leases, filter, poison policy), then starts one run of the worker DAG per
message itself, through Airflow's REST API, with the rules of
:class:`~airflow_provider_fnf.dispatching.MNSMessageDispatcher` (run id
``mns__{queue}__{message id}``, the message as ``dag_run.conf``, redelivered messages reconciled).

Why: the other way from a message to its worker run goes through an asset event, a run of a
dispatcher DAG and that run's task process (``MNSDispatchMessagesOperator``), which costs a
task slot and about two seconds per message batch. Here a worker run is created as soon as its
message is received, the way a client posting to the REST API creates it. What it needs: an
Airflow connection to the API server (``airflow_api_conn_id``, see
:mod:`airflow_provider_fnf.hooks.airflow_api`) for a user allowed to trigger the worker DAG.

The watched asset is the worker DAG's schedule, so pausing the worker DAG stops the trigger::

    queue = Asset("fnf_one_task_queue", watchers=[AssetWatcher(
        name="fnf_one_task_dispatch",
        trigger=MNSDispatchTrigger(queue_name="fnf-one-task", trigger_dag_id="fnf_one_task_worker"),
    )])
    with DAG("fnf_one_task_worker", schedule=[queue], ...): ...
"""

from __future__ import annotations

from typing import Any

from airflow_provider_fnf.dispatching import (
    FAILED_RUN_ERROR_NAME,
    FailedRunPolicy,
    MNSMessageDispatcher,
    check_failed_run_policy,
)
from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.hooks.airflow_api import DEFAULT_AIRFLOW_API_CONN_ID, AirflowAPIHook
from airflow_provider_fnf.masking import mask_task_token_by_shape
from airflow_provider_fnf.receive_settings import accepts_receive_options
from airflow_provider_fnf.receiver import ReceiveResult
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger


class MNSDispatchError(FnFProviderError):
    """Some messages of a batch could not be dispatched: they stay leased and come back; the
    trigger backs off before its next receive."""


class MNSDispatchTrigger(MNSMessageTrigger):
    """
    Receive task messages and start one run of ``trigger_dag_id`` per message, from the triggerer.

    Every keyword of :class:`~airflow_provider_fnf.triggers.mns.MNSMessageTrigger` (the receive
    options: ``queue_name``, ``mns_conn_id``, ``lease_seconds``, ``dead_letter_queue_name``...)
    applies, plus:

    :param trigger_dag_id: the worker DAG to run once per message.
    :param airflow_api_conn_id: connection to Airflow's API server (default ``airflow_api_default``).
    :param fnf_conn_id: Serverless Workflow connection id, to report the task of a redelivered
        message whose run failed.
    :param failed_run_policy: ``report_failed`` (default) or ``leave``, as the dispatch operator's.
    :param failed_run_error_name: the error name reported for a failed run.
    :param note: a note set on every run started.

    Runs are started after each batch (``max_messages_per_event`` defaults to one batch here), so
    the first run of a burst does not wait for the last message of it. A message whose run could
    not be started (the API server down, a wrong password) stays leased and comes back after
    ``lease_seconds``; the trigger logs the error and backs off.
    """

    @accepts_receive_options
    def __init__(
        self,
        *,
        trigger_dag_id: str,
        airflow_api_conn_id: str = DEFAULT_AIRFLOW_API_CONN_ID,
        fnf_conn_id: str = "fnf_default",
        failed_run_policy: FailedRunPolicy = "report_failed",
        failed_run_error_name: str = FAILED_RUN_ERROR_NAME,
        note: str | None = None,
        **options: Any,
    ) -> None:
        if not trigger_dag_id or not isinstance(trigger_dag_id, str):
            raise ValueError(
                f"MNSDispatchTrigger for queue {options.get('queue_name')!r} needs trigger_dag_id, the worker "
                f"DAG's id; got {trigger_dag_id!r}"
            )
        check_failed_run_policy(
            failed_run_policy, f"MNSDispatchTrigger for queue {options.get('queue_name')!r}"
        )
        options.setdefault("max_messages_per_event", options.get("max_messages") or 16)
        super().__init__(**options)
        self.trigger_dag_id = trigger_dag_id
        self.airflow_api_conn_id = airflow_api_conn_id
        self.fnf_conn_id = fnf_conn_id
        self.failed_run_policy = failed_run_policy
        self.failed_run_error_name = failed_run_error_name
        self.note = note
        self._dispatcher: MNSMessageDispatcher | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {
            **kwargs,
            "trigger_dag_id": self.trigger_dag_id,
            "airflow_api_conn_id": self.airflow_api_conn_id,
            "fnf_conn_id": self.fnf_conn_id,
            "failed_run_policy": self.failed_run_policy,
            "failed_run_error_name": self.failed_run_error_name,
            "note": self.note,
        }

    def _work_on(self, result: ReceiveResult) -> ReceiveResult:
        """Start (or reconcile) the runs of the messages received; nothing is left for an event.
        Runs in the worker's thread, as the receive does; the dispatcher and its hooks are built
        there on first use and kept for the trigger's life."""
        if not result.messages:
            return result
        if self._dispatcher is None:
            self._dispatcher = MNSMessageDispatcher(
                trigger_dag_id=self.trigger_dag_id,
                dag_runs=AirflowAPIHook(self.airflow_api_conn_id),
                fnf_conn_id=self.fnf_conn_id,
                failed_run_policy=self.failed_run_policy,
                failed_run_error_name=self.failed_run_error_name,
                note=self.note,
                log=self.log,
                mask_token=mask_task_token_by_shape,  # the triggerer lives long: never grow its masker
            )
        messages, result.messages = result.messages, []
        summary, errors = self._dispatcher.dispatch(messages)
        self._dispatcher.log_summary(messages, summary)
        if errors:
            raise MNSDispatchError(
                f"{len(errors)} of {len(messages)} message(s) from MNS queue {self.queue_name} could not be "
                f"dispatched to DAG {self.trigger_dag_id!r} (they stay leased and come back): "
                + "; ".join(errors),
                resource=self.queue_name,
            )
        return result

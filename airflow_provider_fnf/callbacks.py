"""Callbacks that keep a flow from waiting on a worker DAG that died.

Two pieces, both plain callables for Airflow's callback arguments:

- :func:`record_task_error`, a **task-level** ``on_failure_callback``: it stores the failed task's
  exception (type names and message) in XCom, so that the report operator and the DAG-level
  callback can name the error in the Cause and map its type to an error name
  (``error_names={"TimeoutError": "Airflow.Timeout"}``). Put it in ``default_args``.
- :func:`report_task_failed_on_dag_failure` (or one made by
  :func:`make_report_task_failed_callback`), a **DAG-level** ``on_failure_callback``: when a run
  fails before its report operator told the flow anything (run timeout, a task marked failed by
  hand, a report operator that never ran), it reports every task token of the run as failed and
  then deletes the message. It never deletes a message unless the report succeeded or the service
  answered TaskAlreadyCompleted.

```python
from airflow_provider_fnf.callbacks import record_task_error, report_task_failed_on_dag_failure

with DAG(
    "worker",
    dagrun_timeout=timedelta(minutes=30),
    default_args={"on_failure_callback": record_task_error},
    on_failure_callback=report_task_failed_on_dag_failure,
):
    ...
```

The DAG-level callback reads the messages from ``dag_run.conf`` (one message per run, as the
dispatch writes it) or from the run's triggering asset events (watcher-driven runs). It runs in
the DAG processor; when Airflow gives it no ``dag_run`` (a run that failed before any task
started) it logs that it cannot report and the flow's own step timeout applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.masking import redact_text
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.reporting import (
    DEFAULT_TASK_FAILED_ERROR,
    DEFAULT_TIMEOUT_ERROR,
    REPORT_XCOM_KEY,
    TASK_ERROR_XCOM_KEY,
    FailedTask,
    ReportTarget,
    check_error_name,
    collect_failed_tasks,
    error_name_for,
    failure_cause,
    report_failure,
    state_key_owner,
    task_states_of_run,
    xcom_of_run,
)

log = logging.getLogger(__name__)

_MAX_RECORDED_MESSAGE = 2_000


def exception_type_names(error: BaseException) -> list[str]:
    """The qualified names of an exception's type and its bases, most specific first
    (``["TimeoutError", "OSError", "Exception"]``), as :func:`error_name_for` matches them."""
    types = [f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__ if cls not in (object,)]
    return [t.removeprefix("builtins.") for t in types if not t.endswith(("BaseException",))] or [
        type(error).__name__
    ]


def record_task_error(context: Mapping[str, Any]) -> None:
    """Task-level ``on_failure_callback``: store the exception that failed the task in XCom
    (key ``serverless_workflow_task_error``) for the report operator and the DAG-level callback.

    Task tokens and signatures in the message are replaced by ``***``.
    """
    error = context.get("exception")
    ti = context.get("ti")
    if ti is None:
        return
    if error is None:
        log.info("Task %s failed without an exception to record", getattr(ti, "task_id", "?"))
        return
    types = exception_type_names(error)
    message = redact_text(str(error))
    dag_run = context.get("dag_run")
    conf_value = getattr(dag_run, "conf", None)
    token = conf_value.get("task_token") if isinstance(conf_value, Mapping) else None
    if isinstance(token, str) and token:
        message = message.replace(token, "***")
    if len(message) > _MAX_RECORDED_MESSAGE:
        message = message[:_MAX_RECORDED_MESSAGE] + "..."
    try:
        ti.xcom_push(key=TASK_ERROR_XCOM_KEY, value={"types": types, "message": message})
    except Exception:  # the task already failed; a missing record only makes the Cause shorter
        log.exception("Could not record the error of task %s", getattr(ti, "task_id", "?"))


def _messages_of_run(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    dag_run = context.get("dag_run")
    conf_value = getattr(dag_run, "conf", None)
    if isinstance(conf_value, Mapping) and conf_value.get("task_token"):
        return [dict(conf_value)]
    messages: list[dict[str, Any]] = []
    try:
        events = context.get("triggering_asset_events")
    except Exception:  # the accessor queries Airflow lazily; no events is not an error here
        events = None
    if events:
        from airflow_provider_fnf.messages import messages_from_asset_events

        messages = [m for m in messages_from_asset_events(events) if m.get("task_token")]
    return messages


def _reported_message_ids(dag: Any, run_id: str) -> set[str | None]:
    """Message ids the run's report operators and ``@task.fnf_callback`` tasks already reported
    (their XCom record)."""
    from airflow_provider_fnf.decorators.fnf import ServerlessWorkflowCallbackDecoratedOperator

    reporters = (ServerlessWorkflowReportTaskOperator, ServerlessWorkflowCallbackDecoratedOperator)
    report_ids = [
        t.task_id
        for t in dag.tasks
        if isinstance(t, reporters)
        or getattr(t, "operator_class", None) in reporters
        or getattr(t, "task_type", None) in {r.__name__ for r in reporters}
    ]
    if not report_ids:
        return set()
    reported: set[str | None] = set()
    for key in task_states_of_run(dag.dag_id, run_id, report_ids):
        task_id, map_index = state_key_owner(key, report_ids) or (key, -1)
        record = xcom_of_run(dag.dag_id, run_id, task_id, map_index, REPORT_XCOM_KEY)
        if isinstance(record, Mapping):
            reported.add(record.get("message_id"))
    return reported


def make_report_task_failed_callback(
    *,
    fnf_conn_id: str = "fnf_default",
    error: str = DEFAULT_TASK_FAILED_ERROR,
    timeout_error: str = DEFAULT_TIMEOUT_ERROR,
    error_names: dict[str, str] | None = None,
    delete_message: bool = True,
) -> Callable[[Mapping[str, Any]], None]:
    """A DAG-level ``on_failure_callback`` that reports the run's task token(s) as failed.

    :param fnf_conn_id: the ``fnf`` connection to report with.
    :param error: the error name reported for a failed run (default ``Airflow.TaskFailed``).
    :param timeout_error: the error name reported when the run timed out (``dagrun_timeout``),
        default ``Airflow.Timeout``.
    :param error_names: exception type name -> error name for failed tasks whose error was
        recorded by :func:`record_task_error` (as in the report operator).
    :param delete_message: delete each message once its token was reported (default True).
    """
    check_error_name(error, where="make_report_task_failed_callback")
    check_error_name(timeout_error, where="make_report_task_failed_callback")
    for name in (error_names or {}).values():
        check_error_name(name, where="make_report_task_failed_callback, error_names")

    def report_task_failed_on_dag_failure(context: Mapping[str, Any]) -> None:
        dag = context.get("dag")
        run_id = str(context.get("run_id") or getattr(context.get("dag_run"), "run_id", "") or "")
        reason = str(context.get("reason") or "failed")
        dag_id = getattr(dag, "dag_id", "?")
        if context.get("dag_run") is None:
            log.error(
                "DAG %s run %s failed (%s) but the callback got no dag_run: cannot find its task token; "
                "the flow's step timeout applies",
                dag_id,
                run_id,
                reason,
            )
            return
        messages = _messages_of_run(context)
        if not messages:
            log.warning(
                "DAG %s run %s failed (%s): no task token in its conf or asset events", dag_id, run_id, reason
            )
            return
        try:
            already = _reported_message_ids(dag, run_id) if dag is not None else set()
        except Exception:
            log.warning(
                "Could not check which messages of run %s were already reported", run_id, exc_info=True
            )
            already = set()
        failed: list[FailedTask] = []
        if dag is not None:
            try:
                failed = collect_failed_tasks(dag_id, run_id, list(dag.task_ids))
            except Exception:
                log.warning("Could not read the task states of run %s", run_id, exc_info=True)
        timed_out = reason == "timed_out"
        error_name = (
            timeout_error if timed_out else error_name_for(failed, default=error, error_names=error_names)
        )
        last_ti = context.get("ti")
        headline = f"Airflow DAG {dag_id} run {run_id} ended {'by timeout (dagrun_timeout)' if timed_out else 'failed'}"
        if last_ti is not None and getattr(last_ti, "task_id", None):
            headline += f"; last task: {last_ti.task_id}"
        if not failed:
            headline += " before reporting its result"
        cause = failure_cause(failed, dag_id=dag_id, run_id=run_id, headline=headline)
        for message in messages:
            target = ReportTarget.from_message(message)
            if target.message_id in already:
                log.info(
                    "Message %s of run %s was already reported: nothing to do", target.message_id, run_id
                )
                continue
            try:
                summary = report_failure(
                    target,
                    error=error_name,
                    cause=cause,
                    fnf_hook=ServerlessWorkflowHook(fnf_conn_id),
                    log=log,
                    run_id=run_id,
                    delete_message=delete_message,
                )
            except Exception:
                log.exception("Could not report the failure of %s; the message is kept", target.where(run_id))
                continue
            log.info("Reported %s as %s (%s)", target.where(run_id), error_name, summary["outcome"])

    report_task_failed_on_dag_failure.__doc__ = (
        "DAG-level on_failure_callback: report the run's task token(s) as failed, then delete the message(s)."
    )
    return report_task_failed_on_dag_failure


report_task_failed_on_dag_failure = make_report_task_failed_callback()
"""The DAG-level ``on_failure_callback`` with the defaults: ``fnf_default``, error
``Airflow.TaskFailed`` (``Airflow.Timeout`` for a run timeout)."""

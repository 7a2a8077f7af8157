"""``@task.fnf_callback``: one task that does a waitForCallback step's work and reports its result.

The decorated function receives the message (``message``: the parsed-message dict a dispatched
run has as ``dag_run.conf``, its ``body`` the step's input) with the task token replaced by
``***`` wherever it appears (the body carries it too), so nothing the function prints or logs
can show it, masker or not (LocalExecutor echoes a task's output to the scheduler's log
unmasked); the decorator keeps the token to report with. It returns the step's Output (a dict: a JSON
object of at most 32 KiB). The task then reports, in the same process:

- the function returned: ReportTaskSucceeded with the Output, then delete the message;
- the function raised, on its last try: ReportTaskFailed with the error name the report operator
  would give (``error``, or ``error_names`` of the exception's type or a base type; a timeout is
  ``Airflow.Timeout``) and a Cause naming the task and the error, delete the message, and fail
  the task. With retries left, the error is raised unreported: the next try reports;
- an Output that is not a JSON object or is too large: ReportTaskFailed ``Airflow.InvalidOutput``;
- TaskAlreadyCompleted counts as reported (the message is deleted); a report that still fails
  after the hook's retries fails the task and keeps the message; no task token fails the task
  and reports nothing.

Reporting and deleting are :mod:`airflow_provider_fnf.reporting`'s (``report_success``,
``report_failure``), shared with
:class:`~airflow_provider_fnf.operators.fnf.ServerlessWorkflowReportTaskOperator`.

.. code-block:: python

    @task.fnf_callback(error_names={"TimeoutError": "Airflow.Timeout"})
    def do_the_work(message):
        return {"key": message["body"]["key"]}
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import DecoratedOperator, task_decorator_factory
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTimeout

from airflow_provider_fnf.callbacks import exception_type_names
from airflow_provider_fnf.exceptions import (
    ServerlessWorkflowOutputError,
)
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.links.fnf import ServerlessWorkflowExecutionLink
from airflow_provider_fnf.masking import redact_text, redact_value
from airflow_provider_fnf.reporting import (
    DEFAULT_TASK_FAILED_ERROR,
    INVALID_OUTPUT_ERROR,
    REPORT_XCOM_KEY,
    FailedTask,
    ReportTarget,
    check_error_name,
    error_name_for,
    failure_cause,
    json_object_text,
    rejected_token_text,
    report_failure,
    report_success,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskDecorator
    from airflow.sdk import Context

MESSAGE_ARGUMENT = "message"
"""The keyword argument the decorated function receives the message as."""


def _map_index(context: Context) -> int:
    map_index = getattr(context["ti"], "map_index", -1)
    return map_index if isinstance(map_index, int) else -1


def _accepts_message(python_callable: Callable[..., Any]) -> bool:
    parameters = inspect.signature(python_callable).parameters.values()
    return any(p.name == MESSAGE_ARGUMENT or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class ServerlessWorkflowCallbackDecoratedOperator(DecoratedOperator, PythonOperator):
    """The operator behind ``@task.fnf_callback`` (see the module docstring).

    :param fnf_conn_id: the ``fnf`` connection to report with (templated).
    :param error: the error name reported when the function raised (templated), default
        ``Airflow.TaskFailed``.
    :param error_names: exception type name -> error name, e.g. ``{"TimeoutError": "Airflow.Timeout"}``;
        merged over ``{"AirflowTaskTimeout": "Airflow.Timeout"}``. Base classes match too.
    :param delete_message: delete the message after the report (default True).

    The message is the function's ``message`` argument when the DAG passes one (a parsed-message
    dict or its JSON; mappable: ``do_the_work.expand(message=...)``), else ``dag_run.conf``.
    """

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs", "fnf_conn_id", "error")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    operator_extra_links = (ServerlessWorkflowExecutionLink(),)
    custom_operator_name = "@task.fnf_callback"
    ui_color = "#ff9933"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        fnf_conn_id: str = "fnf_default",
        error: str = DEFAULT_TASK_FAILED_ERROR,
        error_names: dict[str, str] | None = None,
        delete_message: bool = True,
        **kwargs: Any,
    ) -> None:
        op_kwargs = dict(op_kwargs or {})
        self.passes_message = _accepts_message(python_callable)
        if self.passes_message:
            op_kwargs.setdefault(MESSAGE_ARGUMENT, None)  # filled in at run time
        # The return value is the Output, reported; the task returns the report's summary.
        kwargs.setdefault("show_return_value_in_logs", False)
        super().__init__(
            kwargs_to_upstream={
                "python_callable": python_callable,
                "op_args": op_args,
                "op_kwargs": op_kwargs,
            },
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            **kwargs,
        )
        where = f"Task {self.task_id}"
        if "{{" not in error:
            check_error_name(error, where=where)
        for type_name, name in (error_names or {}).items():
            check_error_name(name, where=f"{where}, error_names[{type_name!r}]")
        self.fnf_conn_id = fnf_conn_id
        self.error = error
        self.error_names = dict(error_names or {})
        self.delete_message = delete_message

    @cached_property
    def hook(self) -> ServerlessWorkflowHook:
        return ServerlessWorkflowHook(fnf_conn_id=self.fnf_conn_id)

    # --- the message -----------------------------------------------------------------------
    def _message(self, context: Context) -> dict[str, Any]:
        message: Any = self.op_kwargs.get(MESSAGE_ARGUMENT) if self.passes_message else None
        if message is None:
            dag_run = context.get("dag_run")
            message = getattr(dag_run, "conf", None) if dag_run is not None else None
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
                message = None
        if not isinstance(message, Mapping):
            raise AirflowFailException(
                f"Task {self.task_id}, run {context.get('run_id')}: no message (a parsed-message dict in "
                f"the {MESSAGE_ARGUMENT!r} argument or dag_run.conf, got {type(message).__name__}); "
                "nothing was reported"
            )
        return dict(message)

    # --- running and reporting --------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        run_id = context.get("run_id")
        message = self._message(context)
        target = ReportTarget.from_message(message)  # registers the token with the secrets masker
        where = f"Task {self.task_id}, {target.where(run_id)}"
        ServerlessWorkflowExecutionLink.persist(
            context,
            fnf_conn_id=self.fnf_conn_id,
            flow_name=target.flow_name,
            execution_name=target.execution_name,
        )
        if not target.task_token:
            raise AirflowFailException(
                f"{where}: no task token in the message; the function did not run, nothing was "
                "reported and the message is kept"
            )
        if self.passes_message:
            # The function never needs the token (the decorator reports): it gets none to print.
            self.op_kwargs = {**self.op_kwargs, MESSAGE_ARGUMENT: redact_value(message, (target.task_token,))}
        try:
            output = super().execute(context)
        except (Exception, AirflowTaskTimeout) as exc:
            ti = context["ti"]
            if not isinstance(exc, AirflowFailException) and ti.try_number <= ti.max_tries:
                self.log.info(
                    "%s: try %s of %s failed; not reported, the next try reports",
                    target.where(run_id),
                    ti.try_number,
                    ti.max_tries + 1,
                )
                raise
            self._fail(context, target, exc)
        return self._succeed(context, target, output)

    def _fail(self, context: Context, target: ReportTarget, exc: BaseException) -> None:
        run_id = context.get("run_id")
        failed = [
            FailedTask(
                task_id=self.task_id,
                map_index=_map_index(context),
                error_types=exception_type_names(exc),
                error_message=redact_text(str(exc)),
            )
        ]
        error = error_name_for(failed, default=self.error, error_names=self.error_names)
        cause = failure_cause(
            failed,
            dag_id=context["dag"].dag_id,
            run_id=str(run_id),
            headline=f"Airflow task {context['dag'].dag_id}.{self.task_id}, run {run_id}, failed",
        )
        summary = self._report_failure(context, target, error, cause)
        raise AirflowFailException(
            f"Task {self.task_id}, {target.where(run_id)}: {type(exc).__name__}; reported to Serverless "
            f"Workflow as {error} ({summary['outcome']}), message "
            f"{'deleted' if summary['deleted'] else 'not deleted'}"
        ) from exc

    def _succeed(self, context: Context, target: ReportTarget, output: Any) -> dict[str, Any]:
        run_id = context.get("run_id")
        where = f"Task {self.task_id}, {target.where(run_id)}"
        try:
            output_text = json_object_text(
                output, what="the returned Output", where=where, limits=self.hook.limits
            )
        except ServerlessWorkflowOutputError as err:
            summary = self._report_failure(context, target, INVALID_OUTPUT_ERROR, str(err))
            raise AirflowFailException(
                f"{err}; reported to Serverless Workflow as {INVALID_OUTPUT_ERROR} ({summary['outcome']})"
            ) from err
        summary = report_success(
            target,
            output_text,
            fnf_hook=self.hook,
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
        run_id = context.get("run_id")
        summary = report_failure(
            target,
            error=error,
            cause=cause,
            fnf_hook=self.hook,
            log=self.log,
            run_id=run_id,
            delete_message=self.delete_message,
        )
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=summary)
        if summary["outcome"] == "rejected_token":
            raise AirflowFailException(
                f"Task {self.task_id}, {target.where(run_id)}: reporting {error}: {rejected_token_text(summary)}"
            )
        return summary


def fnf_callback_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """``@task.fnf_callback``: wrap a function that does a waitForCallback step's work into a task
    that reports its result to Serverless Workflow and deletes the message (see the module)."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=False,
        decorated_operator_class=ServerlessWorkflowCallbackDecoratedOperator,
        **kwargs,
    )

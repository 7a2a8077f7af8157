"""MNSDispatchMessagesOperator: one run per message, reconciliation of redelivered messages.

Airflow's side (starting runs, reading states) is a small in-memory fake here; the hooks are
fakes recording calls. End-to-end tests with a real scheduler live in tests/e2e.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_fnf.exceptions import (
    FnFProviderError,
    MNSReceiptHandleError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowTaskAlreadyCompletedError,
)
from airflow_provider_fnf.messages import run_id_for
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator


class FakeDagRuns:
    def __init__(self, states=None, fail_on=()):
        self.states: dict[str, str] = dict(states or {})
        self.confs: dict[str, dict] = {}
        self.fail_on = set(fail_on)

    def trigger_dag_run(self, dag_id, run_id, conf, note):
        if run_id in self.fail_on:
            raise FnFProviderError(f"Airflow refused {run_id}")
        if run_id in self.states:
            return False
        self.states[run_id] = "queued"
        self.confs[run_id] = conf
        return True

    def dag_run_state(self, dag_id, run_id):
        return self.states[run_id]


class FakeMNS:
    def __init__(self, fail=None):
        self.deleted: list[tuple[str, str]] = []
        self.fail = fail

    def delete_message(self, queue_name, receipt_handle):
        if self.fail:
            raise self.fail
        self.deleted.append((queue_name, receipt_handle))


class FakeFnF:
    def __init__(self, fail=None):
        self.reported: list[tuple] = []
        self.fail = fail

    def report_task_failed(self, token, error, cause):
        if self.fail:
            raise self.fail
        self.reported.append((token, error, cause))
        return 3


def message(mid, dequeue_count=1, handle=None, token="tok-abcdef"):
    return {
        "message_id": mid,
        "receipt_handle": handle or f"h-{mid}-{dequeue_count}",
        "queue_name": "tasks",
        "mns_conn_id": "mns_default",
        "dequeue_count": dequeue_count,
        "enqueue_time": 1,
        "body": {"task_token": token, "n": mid},
        "raw_body": "{}",
        "task_token": token,
        "flow_name": None,
        "execution_name": None,
    }


def operator(messages=None, runs=None, mns=None, fnf=None, **kwargs):
    op = MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id="worker", messages=messages, **kwargs)
    op.dag_runs = runs or FakeDagRuns()
    mns = mns or FakeMNS()
    op.dispatcher._mns_hooks["mns_default"] = mns  # type: ignore[assignment]
    op.dispatcher._fnf_hook = fnf or FakeFnF()  # type: ignore[assignment]
    return op


def test_one_run_per_message_with_the_message_as_conf():
    runs = FakeDagRuns()
    msgs = [message("M1"), message("M2"), message("M1", dequeue_count=2)]
    summary = operator(msgs, runs).execute({})

    assert summary["started"] == [run_id_for("tasks", "M1"), run_id_for("tasks", "M2")]
    conf = runs.confs[run_id_for("tasks", "M1")]
    assert conf["receipt_handle"] == "h-M1-2"  # the newest delivery of a duplicate wins
    assert conf["task_token"] == "tok-abcdef" and conf["queue_name"] == "tasks"


def test_a_redelivered_message_whose_run_is_still_going_starts_nothing():
    rid = run_id_for("tasks", "M1")
    runs = FakeDagRuns({rid: "running"})
    mns, fnf = FakeMNS(), FakeFnF()
    summary = operator([message("M1", dequeue_count=2)], runs, mns, fnf).execute({})
    assert summary["running"] == [rid] and summary["started"] == []
    assert mns.deleted == [] and fnf.reported == []


def test_a_redelivered_message_whose_run_succeeded_is_deleted():
    rid = run_id_for("tasks", "M1")
    mns = FakeMNS()
    summary = operator([message("M1", 2)], FakeDagRuns({rid: "success"}), mns).execute({})
    assert summary["deleted"] == [rid]
    assert mns.deleted == [("tasks", "h-M1-2")]


@pytest.mark.parametrize("fnf_fail", [None, ServerlessWorkflowTaskAlreadyCompletedError("done")])
def test_a_failed_run_is_reported_failed_then_its_message_deleted(fnf_fail):
    rid = run_id_for("tasks", "M1")
    mns, fnf = FakeMNS(), FakeFnF(fail=fnf_fail)
    summary = operator([message("M1", 3)], FakeDagRuns({rid: "failed"}), mns, fnf).execute({})
    assert summary["reported_failed"] == [rid]
    assert mns.deleted == [("tasks", "h-M1-3")]
    if fnf_fail is None:
        token, error, cause = fnf.reported[0]
        assert (token, error) == ("tok-abcdef", "Airflow.DagRunFailed") and rid in cause


def test_a_failed_run_whose_token_is_rejected_follows_the_poison_policy_it_carries():
    rid = run_id_for("tasks", "M1")
    mns, fnf = (
        FakeMNS(),
        FakeFnF(fail=ServerlessWorkflowInvalidTaskTokenError("forged", code="InvalidArgument")),
    )
    conf = {**message("M1", 2), "poison_policy": "delete"}
    summary = operator([conf], FakeDagRuns({rid: "failed"}), mns, fnf).execute({})
    assert summary["rejected_token"] == [rid] and summary["reported_failed"] == []
    assert mns.deleted == [("tasks", "h-M1-2")]


def test_failed_run_policy_leave_keeps_the_message():
    rid = run_id_for("tasks", "M1")
    mns, fnf = FakeMNS(), FakeFnF()
    summary = operator(
        [message("M1", 2)], FakeDagRuns({rid: "failed"}), mns, fnf, failed_run_policy="leave"
    ).execute({})
    assert summary["left"] == [rid] and mns.deleted == [] and fnf.reported == []


def test_a_gone_run_is_started_again():
    runs = FakeDagRuns()
    summary = operator([message("M1", dequeue_count=4)], runs).execute({})
    assert summary["started"] == [run_id_for("tasks", "M1")]


def test_a_stale_handle_on_delete_is_left_to_the_newer_delivery():
    rid = run_id_for("tasks", "M1")
    mns = FakeMNS(fail=MNSReceiptHandleError("stale"))
    summary = operator([message("M1", 2)], FakeDagRuns({rid: "success"}), mns).execute({})
    assert summary["deleted"] == [rid]


def test_errors_fail_the_task_after_every_other_message_was_handled():
    runs = FakeDagRuns(fail_on={run_id_for("tasks", "M1")})
    op = operator([message("M1"), message("M2")], runs)
    with pytest.raises(FnFProviderError, match="1 of 2 message"):
        op.execute({})
    assert run_id_for("tasks", "M2") in runs.confs


def test_messages_default_to_the_runs_triggering_asset_events():
    payload = {"status": "success", "messages": [message("M1"), message("M2")]}
    context = {"triggering_asset_events": {"asset": [SimpleNamespace(extra={"payload": payload})]}}
    summary = operator(None).execute(context)  # type: ignore[arg-type]
    assert len(summary["started"]) == 2


@pytest.mark.parametrize("messages", ["not a list", [{"no": "id"}], [{"message_id": "M1"}]])
def test_bad_messages_are_named(messages):
    with pytest.raises(ValueError, match="messages|parsed MNS message"):
        operator(messages).execute({})


def test_bad_policy_is_rejected():
    with pytest.raises(ValueError, match="failed_run_policy"):
        MNSDispatchMessagesOperator(task_id="d", trigger_dag_id="w", failed_run_policy="explode")


class FakeComms:
    """The Task SDK's supervisor channel, answering like the Execution API does."""

    def __init__(self, existing=None):
        self.existing = dict(existing or {})
        self.sent: list = []

    def send(self, msg):
        from airflow.sdk.api.datamodels._generated import DagRunState
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time.comms import DagRunStateResult, ErrorResponse, OKResponse

        self.sent.append(msg)
        if msg.type == "TriggerDagRun":
            if msg.run_id in self.existing:
                return ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS)
            if msg.dag_id == "missing":
                return ErrorResponse(error=ErrorType.GENERIC_ERROR, detail={"status_code": 404})
            self.existing[msg.run_id] = "queued"
            return OKResponse(ok=True)
        if msg.type == "GetDagRunState":
            return DagRunStateResult(state=DagRunState(self.existing[msg.run_id]))
        raise AssertionError(msg)


def test_task_sdk_client_speaks_the_supervisor_protocol(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    from airflow_provider_fnf.operators.dispatch import TaskSDKDagRunClient

    comms = FakeComms({"mns__q__OLD": "running"})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    client = TaskSDKDagRunClient()

    assert client.trigger_dag_run("worker", "mns__q__NEW", {"message_id": "NEW"}, None) is True
    assert comms.sent[0].conf == {"message_id": "NEW"} and comms.sent[0].logical_date is None
    assert client.trigger_dag_run("worker", "mns__q__OLD", {}, None) is False
    assert client.dag_run_state("worker", "mns__q__OLD") == "running"
    with pytest.raises(FnFProviderError, match="refused to start run"):
        client.trigger_dag_run("missing", "mns__q__X", {}, None)

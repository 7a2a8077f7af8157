"""A task token Serverless Workflow rejects is final wherever the provider learns it: the report
operator, the DAG-level failure callback, the dispatcher's reconciliation of a failed run, and the
receiver reporting a poison message. Against the emulator, through the real SDKs: the message
follows the poison policy it carries at once (here: its raw body, verbatim, in the dead-letter
queue), one log line names it, and nothing comes back after the lease."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fnf.callbacks import report_task_failed_on_dag_failure
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.messages import run_id_for
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.receive_settings import MNSReceiveSettings
from airflow_provider_fnf.receiver import MNSMessageReceiver
from airflow_provider_fnf.reporting import REPORT_XCOM_KEY

pytestmark = pytest.mark.integration

FORGED = base64.b64encode(b"v1#orders#e-forged#2#" + b"A" * 32).decode()
BODY = json.dumps({"task_token": FORGED, "note": "<![CDATA[&]]> é 漢字"}, ensure_ascii=False)


class Queues:
    def __init__(self, mns: MNSHook) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.mns = mns
        self.queue, self.dlq = f"rejected-{suffix}", f"rejected-{suffix}-dlq"
        mns.create_queue(self.queue)
        mns.create_queue(self.dlq)

    def receiver(self, **options: Any) -> MNSMessageReceiver:
        options.setdefault("dead_letter_queue_name", self.dlq)
        return MNSMessageReceiver(MNSReceiveSettings(queue_name=self.queue, lease_seconds=600, **options))

    def received(self, body: str = BODY, **options: Any) -> dict[str, Any]:
        """A hostile message, received and leased as the trigger does: a run's conf."""
        self.mns.send_message(self.queue, body)
        (message,) = self.receiver(**options).receive_batch(5).messages
        return message

    def left(self, queue: str) -> int:
        attributes = self.mns.get_queue_attributes(queue)
        return attributes["active_messages"] + attributes["inactive_messages"]

    def dead_letters(self) -> list[str]:
        bodies = []
        while batch := self.mns.receive_messages(self.dlq, 16, wait_seconds=1):
            bodies.extend(m.body for m in batch)
        return bodies


@pytest.fixture
def queues(connections: dict[str, str]) -> Queues:
    return Queues(MNSHook())


def _report_operator(queues: Queues, make_context: Any) -> str:
    conf = queues.received()
    with DAG(f"rejected_{uuid.uuid4().hex[:6]}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        task = ServerlessWorkflowReportTaskOperator(task_id="report", output={"ok": True})
    context = make_context(task, conf, run_id="mns__rejected__1")
    with pytest.raises(AirflowFailException, match="rejected the task token") as err:
        task.execute(context)
    assert "message was dead_lettered (poison_policy dead_letter)" in str(err.value)
    assert context["ti"].xcom[REPORT_XCOM_KEY]["outcome"] == "rejected_token"
    return conf["message_id"]


def _failure_callback(queues: Queues, make_context: Any) -> str:
    conf = queues.received()
    report_task_failed_on_dag_failure(
        {"run_id": "r", "reason": "task_failure", "dag_run": SimpleNamespace(run_id="r", conf=conf)}
    )
    return conf["message_id"]


class FailedRuns:
    def trigger_dag_run(self, dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
        return False  # the run exists...

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return "failed"  # ...and failed before reporting


def _dispatcher_reconciliation(queues: Queues, make_context: Any) -> str:
    conf = queues.received()
    dispatch = MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id="worker", messages=[conf])
    dispatch.dag_runs = FailedRuns()
    summary = dispatch.execute({})  # type: ignore[arg-type]
    assert summary["rejected_token"] == [run_id_for(queues.queue, conf["message_id"])]
    return conf["message_id"]


def _receiver(queues: Queues, make_context: Any) -> str:
    # Not JSON (its closing brace is lost), but the token can still be read and is reported.
    message_id = queues.mns.send_message(queues.queue, BODY[:-1])
    result = queues.receiver().receive_batch(5)
    assert result.poisoned == [message_id] and result.messages == []
    return message_id


@pytest.mark.parametrize(
    ("learn", "raw_body"),
    [
        (_report_operator, BODY),
        (_failure_callback, BODY),
        (_dispatcher_reconciliation, BODY),
        (_receiver, BODY[:-1]),
    ],
    ids=["report operator", "failure callback", "dispatcher reconciliation", "receiver"],
)
def test_a_rejected_token_dead_letters_the_message_at_once(
    queues, make_context, caplog, capsys, learn, raw_body
):
    with caplog.at_level(logging.INFO):
        message_id = learn(queues, make_context)

    assert queues.left(queues.queue) == 0, "the message must not come back after its lease"
    assert queues.dead_letters() == [raw_body]  # verbatim, once
    # Task loggers write to stdout, module loggers to logging: one of them holds the line, once.
    captured = capsys.readouterr()
    lines = [
        line
        for text in (captured.out + captured.err, caplog.text)
        for line in text.splitlines()
        if "rejected the task token of message" in line
    ]
    assert len(lines) == 1, lines
    assert f"message {message_id} on MNS queue {queues.queue} (InvalidArgument)" in lines[0]
    assert "poison_policy dead_letter (dead_lettered)" in lines[0]
    assert "Check that the message was sent by a waitForCallback step" in lines[0]
    assert FORGED not in caplog.text + captured.out + captured.err


@pytest.mark.parametrize(
    ("policy", "delete_message", "left", "settled"),
    [("delete", True, 0, "delete"), ("leave", True, 1, "leave"), ("dead_letter", False, 1, "leave")],
)
def test_the_policy_the_message_carries_decides(queues, make_context, policy, delete_message, left, settled):
    conf = queues.received(poison_policy=policy)
    assert conf["poison_policy"] == policy
    with DAG(f"rejected_{uuid.uuid4().hex[:6]}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        task = ServerlessWorkflowReportTaskOperator(
            task_id="report", output={}, delete_message=delete_message
        )
    with pytest.raises(AirflowFailException, match=f"poison_policy {settled}"):
        task.execute(make_context(task, conf))
    assert queues.left(queues.queue) == left
    assert queues.dead_letters() == []

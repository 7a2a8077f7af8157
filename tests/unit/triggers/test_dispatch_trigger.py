"""MNSDispatchTrigger: serialization, runs started in the trigger's thread after each batch, never
an event, a batch with failed dispatches backs off and keeps its messages leased."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from airflow.triggers.base import BaseEventTrigger

from airflow_provider_fnf.dispatching import MNSMessageDispatcher
from airflow_provider_fnf.exceptions import MNSAuthenticationError
from airflow_provider_fnf.hooks.airflow_api import AirflowAPIError
from airflow_provider_fnf.triggers.dispatch import MNSDispatchTrigger
from tests.unit.triggers.test_mns_trigger import (
    ScriptedReceiver,
    _no_sleep,
    leased,
    logged,
    rebuild,
    record_sleeps,
)

KWARGS = {
    "queue_name": "fnf-tasks",
    "trigger_dag_id": "worker",
    "airflow_api_conn_id": "airflow_api_other",
    "fnf_conn_id": "fnf_other",
    "failed_run_policy": "leave",
    "failed_run_error_name": "Worker.RunFailed",
    "note": "from MNS",
    "lease_seconds": 600,
}


class FakeRuns:
    def __init__(self, fail: set[str] = frozenset()):
        self.started: list[str] = []
        self.threads: set[int] = set()
        self.fail = set(fail)

    def trigger_dag_run(self, dag_id, run_id, conf, note):
        self.threads.add(threading.get_ident())
        if run_id in self.fail:
            self.fail.discard(run_id)  # fails once
            raise AirflowAPIError("HTTP 503", status=503)
        if run_id in self.started:
            return False
        self.started.append(run_id)
        return True

    def dag_run_state(self, dag_id, run_id):
        return "running"


def run_until_permanent_error(trigger, receiver, monkeypatch):
    monkeypatch.setattr(trigger, "_make_receiver", lambda: receiver)

    async def collect():
        events = []
        async for event in trigger.run():
            events.append(event)
        return events

    with pytest.raises(MNSAuthenticationError):
        asyncio.run(asyncio.wait_for(collect(), 5))


def with_runs(trigger: MNSDispatchTrigger, runs: FakeRuns) -> MNSDispatchTrigger:
    trigger._dispatcher = MNSMessageDispatcher(trigger_dag_id=trigger.trigger_dag_id, dag_runs=runs)
    return trigger


def test_serialize_round_trip_with_the_dispatch_arguments():
    trigger = MNSDispatchTrigger(**KWARGS)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_fnf.triggers.dispatch.MNSDispatchTrigger"
    assert {k: kwargs[k] for k in KWARGS} == KWARGS
    assert kwargs["max_messages_per_event"] == 16, "one batch per dispatch by default"
    assert rebuild(trigger).serialize() == (classpath, kwargs)
    assert isinstance(trigger, BaseEventTrigger)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"queue_name": "q", "trigger_dag_id": ""}, "needs trigger_dag_id"),
        ({"queue_name": "q", "trigger_dag_id": "w", "failed_run_policy": "retry"}, "failed_run_policy"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        MNSDispatchTrigger(**kwargs)


def test_every_batch_is_dispatched_in_the_worker_thread_and_no_event_fires(monkeypatch):
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    runs = FakeRuns()
    receiver = ScriptedReceiver(
        [leased("M1", "M2"), leased("M3"), MNSAuthenticationError("stop", status=403)]
    )
    trigger = with_runs(MNSDispatchTrigger(queue_name="q", trigger_dag_id="worker"), runs)

    run_until_permanent_error(trigger, receiver, monkeypatch)

    assert runs.started == ["mns__q__M1", "mns__q__M2", "mns__q__M3"]
    assert runs.threads == receiver.threads and len(runs.threads) == 1
    assert threading.get_ident() not in runs.threads


def test_a_batch_whose_runs_could_not_all_start_backs_off(monkeypatch, caplog, capsys):
    sleeps = record_sleeps(monkeypatch)
    runs = FakeRuns(fail={"mns__q__M2"})
    # M2 comes back (its lease ran out) and is started then.
    receiver = ScriptedReceiver(
        [leased("M1", "M2"), leased("M2"), MNSAuthenticationError("stop", status=403)]
    )
    trigger = with_runs(MNSDispatchTrigger(queue_name="q", trigger_dag_id="worker"), runs)

    with caplog.at_level(logging.INFO):
        run_until_permanent_error(trigger, receiver, monkeypatch)

    assert runs.started == ["mns__q__M1", "mns__q__M2"]
    assert len(sleeps) == 1 and sleeps[0] > 0
    text = logged(capsys, caplog)
    assert "1 of 2 message(s) from MNS queue q could not be dispatched to DAG 'worker'" in text
    assert "Started run mns__q__M1 of DAG worker for message M1" in text

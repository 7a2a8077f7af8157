"""The acknowledgement contract: ack deletes, nack dead-letters the body verbatim then deletes,
release and lease change the visibility, and a stale receipt handle means the same everywhere.

The hook is a small fake recording calls; tests/integration runs the receiver, the report
operator and the dispatcher, which all settle through this, against the emulator."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_fnf.acknowledgement import POISON_POLICIES, MNSMessageAcknowledger
from airflow_provider_fnf.exceptions import MNSEndpointUnreachableError, MNSReceiptHandleError

BODY = '{"task_token": "t", "note": "<&>\\u00e9 ü"}'


class FakeMNSHook:
    def __init__(self, fail=None):
        self.calls: list[tuple] = []
        self.fail = dict(fail or {})

    def _call(self, *call):
        self.calls.append(call)
        if call[0] in self.fail:
            raise self.fail[call[0]]

    def delete_message(self, queue_name, receipt_handle):
        self._call("delete", queue_name, receipt_handle)

    def change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
        self._call("visibility", queue_name, receipt_handle, visibility_timeout)
        return "h-new", 1_800_000_000_000

    def send_message(self, queue_name, body, *, priority=None, delay_seconds=None):
        self._call("send", queue_name, body)
        return "DLQ-1"


def message(handle="h-1"):
    return {"message_id": "M1", "queue_name": "jobs", "receipt_handle": handle, "raw_body": BODY}


def acker(**fail):
    hook = FakeMNSHook(fail)
    return MNSMessageAcknowledger(hook), hook  # type: ignore[arg-type]


STALE = MNSReceiptHandleError("stale", code="MessageNotExist")


def test_ack_deletes_by_receipt_handle():
    ack, hook = acker()
    assert ack.ack(message()) == "deleted"
    assert hook.calls == [("delete", "jobs", "h-1")]


def test_nack_sends_the_raw_body_verbatim_then_deletes():
    ack, hook = acker()
    assert ack.nack(message(), "jobs-dlq") == "dead_lettered"
    assert hook.calls == [("send", "jobs-dlq", BODY), ("delete", "jobs", "h-1")]


def test_a_failed_dead_letter_send_deletes_nothing():
    ack, hook = acker(send=MNSEndpointUnreachableError("down"))
    with pytest.raises(MNSEndpointUnreachableError):
        ack.nack(message(), "jobs-dlq")
    assert [c[0] for c in hook.calls] == ["send"]


def test_release_and_lease_are_visibility_changes():
    ack, hook = acker()
    assert ack.release(message(), "filtered") == "released"
    assert ack.lease(message(), 600) == ("h-new", 1_800_000_000_000)
    assert hook.calls == [("visibility", "jobs", "h-1", 1), ("visibility", "jobs", "h-1", 600)]


@pytest.mark.parametrize(
    ("call", "failing"),
    [
        (lambda a: a.ack(message()), "delete"),
        (lambda a: a.nack(message(), "jobs-dlq"), "delete"),
        (lambda a: a.release(message(), "filtered"), "visibility"),
        (lambda a: a.lease(message(), 600), "visibility"),
    ],
    ids=["ack", "nack", "release", "lease"],
)
def test_a_stale_receipt_handle_means_the_same_everywhere(call, failing, caplog):
    ack, _ = acker(**{failing: STALE})
    with caplog.at_level(logging.WARNING, logger="airflow_provider_fnf.acknowledgement"):
        outcome = call(ack)
    assert outcome in ("stale", None)  # lease: no new handle, the message is not ours to work on
    assert "receipt handle is stale (MessageNotExist)" in caplog.text
    assert "received again since, and that delivery settles it" in caplog.text


def test_other_errors_propagate():
    ack, _ = acker(delete=MNSEndpointUnreachableError("down"))
    with pytest.raises(MNSEndpointUnreachableError):
        ack.ack(message())


def test_a_message_deleted_on_receipt_has_nothing_to_delete_but_is_still_dead_lettered():
    ack, hook = acker()
    assert ack.ack(message(handle=None)) == "no_receipt_handle"
    assert ack.nack(message(handle=None), "jobs-dlq") == "dead_lettered"
    assert hook.calls == [("send", "jobs-dlq", BODY)]


@pytest.mark.parametrize(
    ("policy", "outcome", "calls"),
    [
        ("dead_letter", "dead_lettered", ["send", "delete"]),
        ("delete", "deleted", ["delete"]),
        ("leave", "left", []),
    ],
)
def test_poison_policies(policy, outcome, calls):
    assert policy in POISON_POLICIES
    ack, hook = acker()
    assert ack.settle_poison(message(), policy, "jobs-dlq") == outcome
    assert [c[0] for c in hook.calls] == calls

"""The receive pipeline's decisions: lease, release, poison policy, reporting (pure logic).

The hooks are replaced by small in-memory fakes recording calls; the same pipeline runs against
the real SDKs and the emulator in tests/integration/test_mns_receive_integration.py.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import time

import pytest

from airflow_provider_fnf.exceptions import (
    MNSEndpointUnreachableError,
    MNSError,
    MNSQueueNotFoundError,
    MNSReceiptHandleError,
    ServerlessWorkflowError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowTaskAlreadyCompletedError,
)
from airflow_provider_fnf.hooks.mns import MNSMessage
from airflow_provider_fnf.receive_settings import MNSReceiveSettings
from airflow_provider_fnf.receiver import MNSMessageReceiver, is_retryable

TOKEN = base64.b64encode(b"v1#flow1#exec1#5#signature-bytes").decode()


class FakeMNSHook:
    def __init__(self, messages=(), fail=None):
        self.pending = list(messages)
        self.calls: list[tuple] = []
        self.fail = fail or {}
        self._handles = itertools.count(1)
        self.sent: list[tuple[str, str]] = []

    def _maybe_fail(self, op):
        if op in self.fail:
            raise self.fail[op]

    def receive_messages(self, queue_name, max_messages=1, *, wait_seconds=None):
        self.calls.append(("receive", queue_name, max_messages, wait_seconds))
        self._maybe_fail("receive")
        batch, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return batch

    def change_message_visibility(self, queue_name, receipt_handle, visibility_timeout):
        self.calls.append(("visibility", queue_name, receipt_handle, visibility_timeout))
        self._maybe_fail("visibility")
        return f"leased-{next(self._handles)}", 1_800_000_000_000

    def delete_message(self, queue_name, receipt_handle):
        self.calls.append(("delete", queue_name, receipt_handle))
        self._maybe_fail("delete")

    def send_message(self, queue_name, body, *, priority=None, delay_seconds=None):
        self.calls.append(("send", queue_name))
        self._maybe_fail("send")
        self.sent.append((queue_name, body))
        return "DLQ-MSG-1"


class FakeFnFHook:
    def __init__(self, fail=None):
        self.reported: list[tuple[str, str, str]] = []
        self.fail = fail

    def report_task_failed(self, task_token, error, cause):
        if self.fail:
            raise self.fail
        self.reported.append((task_token, error, cause))
        return 1


def msg(body, mid="M1", handle="h-1", dequeue_count=1, decode_error=None, next_visible_time=3) -> MNSMessage:
    return MNSMessage(
        message_id=mid,
        receipt_handle=handle,
        body=body,
        dequeue_count=dequeue_count,
        enqueue_time=1,
        first_dequeue_time=2,
        next_visible_time=next_visible_time,
        priority=8,
        body_md5=None,
        decode_error=decode_error,
    )


def receiver(messages=(), *, mns_fail=None, fnf_fail=None, **settings):
    mns = FakeMNSHook(messages, fail=mns_fail)
    fnf = FakeFnFHook(fail=fnf_fail)
    settings.setdefault("queue_name", "tasks")
    return MNSMessageReceiver(MNSReceiveSettings(**settings), mns_hook=mns, fnf_hook=fnf), mns, fnf  # type: ignore[arg-type]


GOOD = json.dumps({"task_token": TOKEN, "n": 1})


@pytest.mark.parametrize(
    ("visible_in_seconds", "lease_call"), [(900, False), (899, False), (30, True), (1800, True)]
)
def test_a_receive_whose_visibility_is_the_lease_needs_no_lease_call(visible_in_seconds, lease_call):
    next_visible_ms = int((time.time() + visible_in_seconds) * 1000)
    r, mns, _ = receiver([msg(GOOD, "M1", "h-1", next_visible_time=next_visible_ms)], lease_seconds=900)

    result = r.receive_batch(5)

    assert [m["message_id"] for m in result.messages] == ["M1"]
    assert any(c[0] == "visibility" for c in mns.calls) is lease_call
    assert result.messages[0]["receipt_handle"] == ("leased-1" if lease_call else "h-1")


def test_good_messages_are_leased_and_carry_the_new_receipt_handle():
    r, mns, fnf = receiver([msg(GOOD, "M1", "h-1"), msg(GOOD, "M2", "h-2")], lease_seconds=900)

    result = r.receive_batch(5)

    assert [m["message_id"] for m in result.messages] == ["M1", "M2"]
    assert [m["receipt_handle"] for m in result.messages] == ["leased-1", "leased-2"]
    assert ("visibility", "tasks", "h-1", 900) in mns.calls
    assert ("receive", "tasks", 16, 5) in mns.calls
    assert not any(c[0] == "delete" for c in mns.calls)
    assert fnf.reported == []


def test_delete_on_receipt_deletes_instead_of_leasing():
    r, mns, _ = receiver([msg(GOOD)], delete_on_receipt=True)
    result = r.receive_batch(0)
    assert result.messages[0]["receipt_handle"] is None
    assert ("delete", "tasks", "h-1") in mns.calls
    assert not any(c[0] == "visibility" for c in mns.calls)


def test_filtered_out_messages_are_released_at_once():
    body = json.dumps({"task_token": TOKEN, "kind": "other"})
    r, mns, _ = receiver([msg(body)], message_filtering="$.kind", message_filtering_match_values=["resize"])
    result = r.receive_batch(0)
    assert result.messages == [] and result.released == ["M1"]
    assert mns.calls[-1] == ("visibility", "tasks", "h-1", 1)


def test_the_receive_count_is_judged_only_for_messages_that_pass_the_filter():
    theirs = msg(json.dumps({"task_token": TOKEN, "kind": "other"}), "THEIRS", "h-t", dequeue_count=50)
    ours = msg(json.dumps({"task_token": TOKEN, "kind": "resize"}), "OURS", "h-o", dequeue_count=11)
    r, _, _ = receiver(
        [theirs, ours],
        message_filtering="$.kind",
        message_filtering_match_values=["resize"],
        poison_policy="delete",
    )
    result = r.receive_batch(0)
    # another consumer's message is released, however often it was received; ours is poison
    assert result.released == ["THEIRS"] and result.poisoned == ["OURS"]


def test_every_message_carries_how_it_is_settled_should_its_token_be_rejected_later():
    r, _, _ = receiver([msg(GOOD)], dead_letter_queue_name="tasks-dlq", body_encoding="auto")
    (message,) = r.receive_batch(0).messages
    assert (message["poison_policy"], message["dead_letter_queue_name"], message["body_encoding"]) == (
        "dead_letter",
        "tasks-dlq",
        "auto",
    )


@pytest.mark.parametrize(("dequeue_count", "poisoned"), [(10, False), (11, True)])
def test_by_default_a_message_received_more_than_ten_times_is_poison(dequeue_count, poisoned):
    r, _, _ = receiver([msg(GOOD, dequeue_count=dequeue_count)], poison_policy="delete")
    result = r.receive_batch(0)
    assert (result.poisoned == ["M1"]) is poisoned


def test_a_callable_filter_works_in_the_synchronous_path():
    keep = json.dumps({"task_token": TOKEN, "keep": True})
    drop = json.dumps({"task_token": TOKEN, "keep": False})
    r, _, _ = receiver([msg(keep, "K"), msg(drop, "D", "h-d")], message_filtering=lambda m: m["body"]["keep"])
    result = r.receive_batch(0)
    assert [m["message_id"] for m in result.messages] == ["K"]
    assert result.released == ["D"]


def test_a_message_whose_lease_fails_is_not_handed_out():
    r, _, _ = receiver([msg(GOOD)], mns_fail={"visibility": MNSReceiptHandleError("stale")})
    result = r.receive_batch(0)
    assert result.messages == [] and result.dropped == ["M1"]


def test_messages_received_after_the_consumer_stopped_are_released():
    r, mns, _ = receiver([msg(GOOD)])
    result = r.receive_batch(0, should_stop=lambda: True)
    assert result.messages == [] and result.released == ["M1"]
    assert ("visibility", "tasks", "h-1", 1) in mns.calls


@pytest.mark.parametrize(
    ("policy", "dlq", "expected_calls", "outcome_sent"),
    [
        ("dead_letter", "tasks-dlq", [("send", "tasks-dlq"), ("delete", "tasks", "h-1")], True),
        (None, "tasks-dlq", [("send", "tasks-dlq"), ("delete", "tasks", "h-1")], True),
        ("delete", None, [("delete", "tasks", "h-1")], False),
        ("leave", None, [], False),
        (None, None, [], False),
    ],
)
@pytest.mark.parametrize(
    ("body", "extra", "token_reported"),
    [
        ("this is not json", {}, None),
        ('{"task_token": "' + TOKEN + '", "broken": ', {}, TOKEN),
        ('{"no": "token"}', {}, None),
        (GOOD, {"dequeue_count": 6}, TOKEN),
        (GOOD, {"decode_error": "Incorrect padding"}, TOKEN),
    ],
)
def test_poison_messages_follow_the_policy_and_report_when_a_token_is_readable(
    policy, dlq, expected_calls, outcome_sent, body, extra, token_reported
):
    r, mns, fnf = receiver(
        [msg(body, **extra)], poison_policy=policy, dead_letter_queue_name=dlq, max_receive_count=5
    )

    result = r.receive_batch(0)

    assert result.messages == [] and result.poisoned == ["M1"]
    assert [c for c in mns.calls if c[0] != "receive"] == expected_calls
    assert mns.sent == ([("tasks-dlq", body)] if outcome_sent else [])
    if token_reported:
        assert len(fnf.reported) == 1
        token, error, cause = fnf.reported[0]
        assert (token, error) == (token_reported, "Airflow.PoisonMessage")
        assert "M1" in cause and "tasks" in cause
    else:
        assert fnf.reported == []


def test_poison_reporting_can_be_turned_off_and_renamed():
    r, _, fnf = receiver([msg(GOOD, dequeue_count=9)], max_receive_count=1, report_poison_failures=False)
    r.receive_batch(0)
    assert fnf.reported == []
    r, _, fnf = receiver([msg(GOOD, dequeue_count=9)], max_receive_count=1, poison_error_name="Worker.Poison")
    r.receive_batch(0)
    assert fnf.reported[0][1] == "Worker.Poison"


@pytest.mark.parametrize(
    "report_error",
    [ServerlessWorkflowTaskAlreadyCompletedError("done"), ServerlessWorkflowInvalidTaskTokenError("forged")],
    ids=["already-completed", "token-rejected"],
)
def test_a_settled_or_rejected_token_still_applies_the_policy(report_error, caplog):
    r, mns, _ = receiver(
        [msg(GOOD, dequeue_count=3)],
        max_receive_count=1,
        poison_policy="delete",
        fnf_fail=report_error,
    )
    with caplog.at_level(logging.ERROR, logger="airflow_provider_fnf.receiver"):
        r.receive_batch(0)
    assert ("delete", "tasks", "h-1") in mns.calls
    rejected = [r.getMessage() for r in caplog.records if "rejected the task token" in r.getMessage()]
    if isinstance(report_error, ServerlessWorkflowInvalidTaskTokenError):
        assert len(rejected) == 1 and "message M1 on MNS queue tasks" in rejected[0]
        assert "poison_policy delete (deleted)" in rejected[0]
    else:
        assert rejected == []


def test_a_failed_report_keeps_the_poison_message_for_its_next_delivery():
    r, mns, _ = receiver(
        [msg(GOOD, dequeue_count=3)],
        max_receive_count=1,
        poison_policy="delete",
        fnf_fail=ServerlessWorkflowError("throttled", status=429),
    )
    r.receive_batch(0)
    assert not any(c[0] == "delete" for c in mns.calls)


def test_a_failed_dead_letter_send_does_not_delete():
    r, mns, _ = receiver(
        [msg("junk")], dead_letter_queue_name="dlq", mns_fail={"send": MNSError("boom", status=500)}
    )
    r.receive_batch(0)
    assert not any(c[0] == "delete" for c in mns.calls)


def test_tokenless_plain_messages_pass_when_no_token_is_required():
    r, _, _ = receiver([msg("plain text")], require_task_token=False)
    result = r.receive_batch(0)
    assert result.messages[0]["body"] == "plain text"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (MNSEndpointUnreachableError("no answer"), True),
        (MNSError("InternalError", status=500), True),
        (MNSError("unknown"), True),
        (ServerlessWorkflowError("throttled", status=429), True),
        (ConnectionResetError(), True),
        (MNSQueueNotFoundError("gone", status=404), False),
        (ValueError("bug"), False),
    ],
)
def test_one_function_decides_what_is_retryable(error, retryable):
    assert is_retryable(error) is retryable


def test_a_failing_filter_hands_nothing_out_and_releases_what_was_leased():
    def picky(message):
        if message["message_id"] == "M2":
            raise KeyError("field the filter expected")
        return True

    r, mns, _ = receiver([msg(GOOD, "M1", "h-1"), msg(GOOD, "M2", "h-2")], message_filtering=picky)

    with pytest.raises(KeyError):
        r.receive_batch(0)
    # M1 was leased (new handle leased-1), then released again because the batch failed.
    assert ("visibility", "tasks", "leased-1", 1) in mns.calls

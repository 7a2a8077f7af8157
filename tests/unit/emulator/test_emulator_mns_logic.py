"""Pure logic of the MNS emulator: string to sign (against recorded SDK requests), query parsing,
queue ordering and visibility, fault rules."""

from __future__ import annotations

import threading

import pytest
from fnf_emulator.core import Request, ServiceError
from fnf_emulator.faults import FaultInjector
from fnf_emulator.identities import Identities
from fnf_emulator.mns.auth import authenticate, content_md5, sign, string_to_sign
from fnf_emulator.mns.service import parse_query
from fnf_emulator.mns.store import MNSQueue, QueueAttributes, StoredMessage

# Two requests recorded from aliyun-mns-sdk 1.3.0 and the string to sign the SDK computed for them.
RECORDED = [
    (
        Request(
            method="PUT",
            path="/queues/fnf-callback",
            query="",
            target="/queues/fnf-callback",
            headers={
                "content-md5": "YTMzYTgxMzk4MTg4ZGQ3OGQwZWFjOWMyMTYxZDViNmY=",
                "content-type": "text/xml;charset=UTF-8",
                "x-mns-version": "2015-06-06",
                "host": "127.0.0.1:37153",
                "date": "Sat, 28 Nov 2026 19:21:11 GMT",
            },
            body=b'<?xml version="1.0" encoding="utf-8"?><Queue xmlns="http://mns.aliyuncs.com/doc/v1/">'
            b"<VisibilityTimeout>5</VisibilityTimeout></Queue>",
        ),
        "PUT\nYTMzYTgxMzk4MTg4ZGQ3OGQwZWFjOWMyMTYxZDViNmY=\ntext/xml;charset=UTF-8\nSat, 28 Nov 2026 19:21:11 GMT\n"
        "x-mns-version:2015-06-06\n/queues/fnf-callback",
    ),
    (
        Request(
            method="PUT",
            path="/queues/fnf-callback/messages",
            query="ReceiptHandle=1-mdNa8YBHRcyqTMUMl4G1ig&VisibilityTimeout=10",
            target="/queues/fnf-callback/messages?ReceiptHandle=1-mdNa8YBHRcyqTMUMl4G1ig&VisibilityTimeout=10",
            headers={"x-mns-version": "2015-06-06", "date": "Sat, 28 Nov 2026 19:21:12 GMT"},
        ),
        "PUT\n\n\nSat, 28 Nov 2026 19:21:12 GMT\nx-mns-version:2015-06-06\n"
        "/queues/fnf-callback/messages?ReceiptHandle=1-mdNa8YBHRcyqTMUMl4G1ig&VisibilityTimeout=10",
    ),
]


@pytest.mark.parametrize(("request_", "expected"), RECORDED)
def test_string_to_sign_matches_the_sdk(request_: Request, expected: str):
    assert string_to_sign(request_) == expected


def test_content_md5_is_base64_of_the_hex_digest():
    assert content_md5(RECORDED[0][0].body) == RECORDED[0][0].headers["content-md5"]


def test_authenticate_accepts_a_signed_request_and_names_the_key():
    request, sts = RECORDED[0]
    signed = Request(**{**request.__dict__, "headers": {**request.headers}})
    signed.headers["authorization"] = f"MNS key-1:{sign('secret-1', sts)}"
    now = 1_795_893_671.0  # the recorded Date
    assert authenticate(signed, Identities({"key-1": "secret-1"}), now=now) == "key-1"
    with pytest.raises(ServiceError) as info:
        authenticate(signed, Identities({"key-1": "other"}), now=now)
    assert (info.value.status, info.value.code) == (403, "SignatureDoesNotMatch")


def test_query_is_unquoted_without_plus_to_space():
    assert parse_query("ReceiptHandle=1-a+b%2Fc&waitSeconds=3&flag") == {
        "receipthandle": "1-a+b/c",
        "waitseconds": "3",
        "flag": "",
    }


def make_queue() -> MNSQueue:
    return MNSQueue("q", QueueAttributes(), 0, 0, threading.Lock())


def message(seq: int, priority: int = 8, visible_at: int = 0) -> StoredMessage:
    return StoredMessage(
        f"id{seq}", f"body{seq}", "MD5", priority, seq, enqueue_time=1_000, visible_at=visible_at
    )


def test_queue_serves_priority_then_arrival_and_skips_invisible():
    queue = make_queue()
    for seq, priority in [(1, 8), (2, 1), (3, 16), (4, 1)]:
        queue.add(message(seq, priority), now=1_000)
    queue.add(message(5, 1, visible_at=5_000), now=1_000)  # delayed
    assert [m.message_id for m in queue.peek(1_000, 10)] == ["id2", "id4", "id1", "id3"]
    taken = queue.take(1_000, 2)
    assert [m.message_id for m in taken] == ["id2", "id4"]
    queue.hide(taken[0], 3_000, "1-handle")
    assert queue.next_due() == 3_000
    assert [m.message_id for m in queue.take(3_000, 10)] == ["id2", "id1", "id3"]
    assert [m.message_id for m in queue.take(5_000, 10)] == ["id5"]


def test_receipt_handles_rotate_and_expire():
    queue = make_queue()
    queue.add(message(1), now=1_000)
    (first,) = queue.take(1_000, 1)
    queue.hide(first, 2_000, "1-old")
    assert queue.by_handle("1-old", 1_500) is first
    queue.hide(first, 4_000, "1-new")
    assert queue.by_handle("1-old", 1_500) is None
    assert queue.by_handle("1-new", 1_500) is first
    assert queue.by_handle("1-new", 4_000) is None  # past its deadline the handle expired


def test_retention_purges_old_messages():
    queue = make_queue()
    queue.add(message(1), now=1_000)
    retention_ms = queue.attributes.message_retention_period * 1000
    assert queue.purge_expired(1_000 + retention_ms - 1, force=True) == []
    assert [m.message_id for m in queue.purge_expired(1_000 + retention_ms, force=True)] == ["id1"]
    assert queue.take(1_000 + retention_ms, 1) == []


def test_heaps_stay_bounded_under_visibility_churn():
    queue = make_queue()
    queue.add(message(1), now=0)
    (only,) = queue.take(0, 1)
    for i in range(10_000):
        queue.hide(only, 10_000 + i, f"1-h{i}")
    assert len(queue._pending) < 2_100


def test_fault_rules_fire_n_times_in_order():
    faults = FaultInjector()
    faults.add({"operation": "ReceiveMessage", "status": 500, "times": 2}, "mns")
    faults.add({"status": 503, "code": "Busy"}, "mns")
    assert faults.fire("fnf", "ReceiveMessage") is None
    first = faults.fire("mns", "ReceiveMessage")
    assert first is not None and (first.status, first.code) == (500, "InternalError")
    assert faults.fire("mns", "ReceiveMessage") is not None
    third = faults.fire("mns", "ReceiveMessage")
    assert third is not None and (third.status, third.code) == (503, "Busy")
    assert [r.code for r in faults.rules()] == ["Busy"]

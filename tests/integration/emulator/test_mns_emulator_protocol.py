"""Every MNS queue operation through the unmodified aliyun-mns-sdk, and the errors the service answers."""

from __future__ import annotations

import hashlib

import pytest
from fnf_emulator.limits import MNS_MAX_BATCH_SIZE, MNS_MAX_MESSAGE_SIZE
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.mns_xml_handler import ListQueueDecoder
from mns.queue import Message, Queue, QueueMeta
from mns_emulator_helpers import make_queue, raw_request

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NS = 'xmlns="http://mns.aliyuncs.com/doc/v1/"'


def server_error(call, *args, **kwargs) -> MNSServerException:
    with pytest.raises(MNSServerException) as info:
        call(*args, **kwargs)
    return info.value


# --- queues ----------------------------------------------------------------------------------
def test_create_queue_answers_location_and_is_idempotent_for_same_attributes(
    emulator: Emulator, account: Account
):
    queue = account.get_queue("orders")
    meta = QueueMeta()
    meta.set_visibilitytimeout(5)
    assert queue.create(meta) == f"{emulator.mns_endpoint}/queues/orders"
    assert queue.create(meta) == f"{emulator.mns_endpoint}/queues/orders"

    other = QueueMeta()
    other.set_visibilitytimeout(6)
    assert server_error(queue.create, other).type == "QueueAlreadyExist"
    assert queue.get_attributes().visibility_timeout == 5


def test_create_queue_status_codes(emulator: Emulator):
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Queue {NS}><DelaySeconds>1</DelaySeconds></Queue>'.encode()
    )
    first = raw_request(emulator.mns_endpoint, "PUT", "/queues/raw", body)
    again = raw_request(emulator.mns_endpoint, "PUT", "/queues/raw", body)
    assert (first.status, again.status) == (201, 204)
    assert first.header("Location") == again.header("Location") == f"{emulator.mns_endpoint}/queues/raw"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("1starts-with-digit", "InvalidQueueName"),
        ("has_underscore", "InvalidQueueName"),
        ("a" * 257, "QueueNameLengthError"),
    ],
)
def test_create_queue_rejects_bad_names(account: Account, name: str, code: str):
    assert server_error(account.get_queue(name).create, QueueMeta()).type == code
    assert account.list_queue()[0] == []


@pytest.mark.parametrize(
    ("setter", "value"),
    [
        ("visibilitytimeout", 43_201),
        ("maximum_message_size", 1_023),
        ("maximum_message_size", 65_537),
        ("message_retention_period", 59),
        ("message_retention_period", 604_801),
        ("delay_seconds", 604_801),
        ("polling_wait_seconds", 31),
    ],
)
def test_queue_attributes_out_of_range_are_rejected_and_change_nothing(
    account: Account, setter: str, value: int
):
    queue = make_queue(account, "limits")
    before = queue.get_attributes()
    meta = QueueMeta()
    getattr(meta, f"set_{setter}")(value)
    assert server_error(queue.set_attributes, meta).type == "InvalidArgument"
    assert server_error(account.get_queue("limits-new").create, meta).type == "InvalidArgument"
    after = queue.get_attributes()
    assert after.__dict__ == before.__dict__
    assert account.list_queue()[0] == [queue_url(account, "limits")]  # "limits-new" was not created


def queue_url(account: Account, name: str) -> str:
    return f"http://{account.get_client().host}/queues/{name}"


def test_get_and_set_queue_attributes(account: Account):
    queue = make_queue(account, "attrs", visibilitytimeout=7, polling_wait_seconds=3, delay_seconds=0)
    attributes = queue.get_attributes()
    assert (attributes.queue_name, attributes.visibility_timeout, attributes.polling_wait_seconds) == (
        "attrs",
        7,
        3,
    )
    assert (attributes.maximum_message_size, attributes.message_retention_period) == (
        MNS_MAX_MESSAGE_SIZE,
        345_600,
    )
    assert (attributes.delay_seconds, attributes.logging_enabled) == (0, False)
    assert attributes.create_time > 1_600_000_000

    meta = QueueMeta()
    meta.set_maximum_message_size(2048)
    meta.set_logging_enabled(True)
    queue.set_attributes(meta)
    changed = queue.get_attributes()
    assert (changed.maximum_message_size, changed.logging_enabled, changed.visibility_timeout) == (
        2048,
        True,
        7,
    )


def test_message_counts_in_attributes(account: Account):
    queue = make_queue(account, "counts", visibilitytimeout=30)
    queue.send_message(Message("a"))
    queue.send_message(Message("b"))
    queue.send_message(Message("later", delay_seconds=60))
    queue.receive_message(0)
    attributes = queue.get_attributes()
    assert (attributes.active_messages, attributes.inactive_messages, attributes.delay_messages) == (1, 1, 1)


def test_delete_queue_drops_it_and_its_messages(account: Account, queue: Queue):
    queue.send_message(Message("gone"))
    queue.delete()
    assert server_error(queue.get_attributes).type == "QueueNotExist"
    assert server_error(queue.receive_message, 0).type == "QueueNotExist"
    queue.delete()  # deleting a missing queue is not an error
    make_queue(account, "jobs")
    assert server_error(queue.receive_message, 0).type == "MessageNotExist"


def test_list_queue_prefix_and_pages(account: Account):
    for name in ("alpha-1", "alpha-2", "alpha-3", "beta"):
        make_queue(account, name)
    urls, marker = account.list_queue(prefix="alpha", ret_number=2)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["alpha-1", "alpha-2"]
    assert marker
    urls, marker = account.list_queue(prefix="alpha", ret_number=2, marker=marker)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["alpha-3"]
    assert marker == ""
    assert len(account.list_queue()[0]) == 4


def test_unknown_queue(account: Account):
    missing = account.get_queue("missing")
    missing.set_encoding(False)
    for call, args in [
        (missing.get_attributes, ()),
        (missing.send_message, (Message("x"),)),
        (missing.receive_message, (0,)),
        (missing.peek_message, ()),
        (missing.delete_message, ("1-" + "a" * 22,)),
        (missing.set_attributes, (QueueMeta(),)),
    ]:
        assert server_error(call, *args).type == "QueueNotExist"


# --- messages --------------------------------------------------------------------------------
def test_send_receive_delete_round_trip(queue: Queue):
    body = '{"task_token": "t<1>&\'2\'", "text": "naïve ünïcode ✓"}'
    sent = queue.send_message(Message(body))
    assert sent.message_body_md5 == hashlib.md5(body.encode()).hexdigest().upper()

    received = queue.receive_message(1)
    assert received.message_body == body
    assert received.message_id == sent.message_id
    assert received.message_body_md5 == sent.message_body_md5
    assert received.dequeue_count == 1
    assert received.priority == 8
    assert received.first_dequeue_time >= received.enqueue_time
    assert received.next_visible_time >= received.first_dequeue_time + 2_000
    assert all(c.isalnum() or c in "-_" for c in received.receipt_handle)

    queue.delete_message(received.receipt_handle)
    assert server_error(queue.receive_message, 0).type == "MessageNotExist"
    assert server_error(queue.delete_message, received.receipt_handle).type == "MessageNotExist"


def test_base64_encoding_round_trip(account: Account):
    queue = make_queue(account, "encoded")
    queue.set_encoding(True)
    queue.send_message(Message("encoded body"))
    assert queue.receive_message(0).message_body == b"encoded body"


def test_batch_send_receive_peek_and_delete(queue: Queue):
    sent = queue.batch_send_message([Message(f"m{i}") for i in range(MNS_MAX_BATCH_SIZE)])
    assert len({m.message_id for m in sent}) == MNS_MAX_BATCH_SIZE

    peeked = queue.batch_peek_message(5)
    assert [m.message_body for m in peeked] == ["m0", "m1", "m2", "m3", "m4"]
    assert all(m.dequeue_count == 0 for m in peeked)
    assert queue.peek_message().message_body == "m0"

    received = queue.batch_receive_message(10, 1)
    assert [m.message_body for m in received] == [f"m{i}" for i in range(10)]
    assert all(m.dequeue_count == 1 and m.receipt_handle for m in received)
    rest = queue.batch_receive_message(16, 1)
    assert [m.message_body for m in rest] == [f"m{i}" for i in range(10, 16)]

    queue.batch_delete_message([m.receipt_handle for m in received + rest])
    assert queue.get_attributes().inactive_messages == 0
    assert server_error(queue.batch_peek_message, 3).type == "MessageNotExist"
    assert server_error(queue.batch_receive_message, 3, 0).type == "MessageNotExist"


def test_batch_send_over_the_limit_stores_nothing(queue: Queue):
    error = server_error(queue.batch_send_message, [Message("x")] * (MNS_MAX_BATCH_SIZE + 1))
    assert error.type == "InvalidArgument"
    assert server_error(queue.peek_message).type == "MessageNotExist"


def test_batch_send_with_one_bad_message_stores_nothing(queue: Queue):
    error = server_error(queue.batch_send_message, [Message("good"), Message("bad", priority=17)])
    assert error.type == "InvalidArgument"
    assert server_error(queue.peek_message).type == "MessageNotExist"


def test_message_size_limits(account: Account):
    queue = make_queue(account, "sizes", maximum_message_size=1024)
    queue.send_message(Message("x" * 1024))
    assert server_error(queue.send_message, Message("x" * 1025)).type == "InvalidArgument"
    big = make_queue(account, "big")
    big.send_message(Message("é" * (MNS_MAX_MESSAGE_SIZE // 2)))
    assert server_error(big.send_message, Message("x" * (MNS_MAX_MESSAGE_SIZE + 1))).type == "InvalidArgument"
    assert big.get_attributes().active_messages == 1


@pytest.mark.parametrize(
    "message", [Message("x", priority=17), Message("x", priority=0), Message("x", delay_seconds=604_801)]
)
def test_send_parameters_out_of_range(queue: Queue, message: Message):
    assert server_error(queue.send_message, message).type == "InvalidArgument"
    assert server_error(queue.peek_message).type == "MessageNotExist"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("receive_message", (31,)),
        ("batch_receive_message", (17, 0)),
        ("batch_receive_message", (0, 0)),
        ("batch_peek_message", (17,)),
    ],
)
def test_receive_parameters_out_of_range(queue: Queue, call: str, args: tuple):
    queue.send_message(Message("keep"))
    assert server_error(getattr(queue, call), *args).type == "InvalidArgument"
    assert queue.peek_message().message_body == "keep"


def test_delete_with_bad_handles(queue: Queue):
    queue.send_message(Message("keep"))
    message = queue.receive_message(0)
    assert server_error(queue.delete_message, "not-a-handle!").type == "ReceiptHandleError"
    assert server_error(queue.delete_message, "1-" + "A" * 22).type == "MessageNotExist"
    queue.delete_message(message.receipt_handle)


def test_batch_delete_partial_failure_deletes_the_valid_ones(queue: Queue):
    queue.batch_send_message([Message("a"), Message("b")])
    received = queue.batch_receive_message(2, 0)
    error = server_error(
        queue.batch_delete_message,
        [received[0].receipt_handle, "1-bogus", "1-" + "B" * 22, received[1].receipt_handle],
    )
    assert error.type == "ReceiptHandleError"
    assert [(e["ReceiptHandle"], e["ErrorCode"]) for e in error.sub_errors] == [
        ("1-bogus", "ReceiptHandleError"),
        ("1-" + "B" * 22, "MessageNotExist"),
    ]
    attributes = queue.get_attributes()
    assert attributes.active_messages + attributes.inactive_messages == 0


def test_change_visibility_out_of_range(emulator: Emulator, queue: Queue):
    queue.send_message(Message("x"))
    message = queue.receive_message(0)
    assert server_error(queue.change_message_visibility, message.receipt_handle, 0).type == "InvalidArgument"
    target = f"/queues/jobs/messages?ReceiptHandle={message.receipt_handle}&VisibilityTimeout=43201"
    response = raw_request(emulator.mns_endpoint, "PUT", target)  # the SDK itself refuses 43201
    assert (response.status, response.xml_text("Code")) == (400, "InvalidArgument")
    queue.delete_message(message.receipt_handle)  # the handle survived the rejected changes


# --- wire details the SDK relies on ----------------------------------------------------------
def test_every_answer_has_request_id_and_content_length(emulator: Emulator, queue: Queue):
    ok = raw_request(emulator.mns_endpoint, "DELETE", "/queues/nothing-here")
    assert ok.status == 204
    assert ok.header("Content-Length") == "0"
    assert "x-mns-request-id" in [name for name, _ in ok.headers]
    error = raw_request(emulator.mns_endpoint, "GET", "/queues/jobs/messages?waitseconds=0")
    assert error.status == 404
    assert error.header("Content-Length") == str(len(error.body))
    assert error.xml_text("Code") == "MessageNotExist"
    assert error.xml_text("RequestId") == error.header("x-mns-request-id")
    assert error.xml_text("HostId") == emulator.mns_endpoint


@pytest.mark.parametrize(
    ("method", "target", "body", "status", "code"),
    [
        ("POST", "/queues/jobs/messages", b"<Message><MessageBody>unclosed", 400, "MalformedXML"),
        ("POST", "/queues/jobs/messages", b"not xml at all", 400, "MalformedXML"),
        (
            "POST",
            "/queues/jobs/messages",
            f"<Message {NS}><Unknown>1</Unknown></Message>".encode(),
            400,
            "InvalidArgument",
        ),
        ("POST", "/queues/jobs/messages", f"<Message {NS}></Message>".encode(), 400, "InvalidArgument"),
        ("POST", "/queues/jobs/messages", f"<Queue {NS}/>".encode(), 400, "InvalidArgument"),
        ("POST", "/queues/jobs/messages", f"<Messages {NS}></Messages>".encode(), 400, "InvalidArgument"),
        (
            "PUT",
            "/queues/jobs",
            b"<Queue><VisibilityTimeout>soon</VisibilityTimeout></Queue>",
            400,
            "InvalidArgument",
        ),
        ("PUT", "/queues/jobs?metaoverride=true", b"<Queue><Visibility", 400, "MalformedXML"),
        (
            "DELETE",
            "/queues/jobs/messages",
            b"<ReceiptHandles><Oops/></ReceiptHandles>",
            400,
            "InvalidArgument",
        ),
        ("DELETE", "/queues/jobs/messages?ReceiptHandle=", b"", 400, "MissingReceiptHandle"),
        (
            "PUT",
            "/queues/jobs/messages?ReceiptHandle=1-aaaaaaaaaaaaaaaaaaaaaa",
            b"",
            400,
            "MissingVisibilityTimeout",
        ),
        ("GET", "/queues/jobs/messages?waitseconds=abc", b"", 400, "InvalidArgument"),
        ("GET", "/queues/jobs/messages?waitseconds=-1", b"", 400, "InvalidArgument"),
        ("GET", "/topics", b"", 400, "InvalidRequestURL"),
        ("POST", "/queues/jobs", b"", 400, "InvalidRequestURL"),
    ],
)
def test_bad_requests_get_the_service_error_and_change_nothing(
    emulator: Emulator, queue: Queue, method: str, target: str, body: bytes, status: int, code: str
):
    queue.send_message(Message("precious"))
    response = raw_request(emulator.mns_endpoint, method, target, body)
    assert (response.status, response.xml_text("Code")) == (status, code)
    assert response.xml_text("Message")
    assert queue.get_attributes().visibility_timeout == 2
    assert queue.peek_message().message_body == "precious"


def test_receipt_handle_with_plus_is_not_unquoted_to_space(emulator: Emulator, queue: Queue):
    response = raw_request(emulator.mns_endpoint, "DELETE", "/queues/jobs/messages?ReceiptHandle=1-a+b")
    assert (response.status, response.xml_text("Code")) == (400, "ReceiptHandleError")


def test_list_queue_with_meta_decodes_with_the_sdk(emulator: Emulator, account: Account):
    make_queue(account, "meta", visibilitytimeout=11)
    response = raw_request(emulator.mns_endpoint, "GET", "/queues", headers={"x-mns-with-meta": "true"})
    urls, marker, metas = ListQueueDecoder.decode(response.body.decode(), True)
    assert (urls, marker) == ([f"{emulator.mns_endpoint}/queues/meta"], "")
    meta = metas[0]
    assert (meta["QueueName"], meta["VisibilityTimeout"], meta["ActiveMessages"]) == ("meta", "11", "0")

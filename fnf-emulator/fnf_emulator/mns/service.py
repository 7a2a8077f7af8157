"""The Simple Message Queue (MNS) service of the emulator: queue operations over the MNS wire format.

Every request is authenticated (:mod:`.auth`), routed to one operation, and answered with the
XML, headers and status codes the ``aliyun-mns-sdk`` expects; every error is an MNS error body
(Code, Message, RequestId, HostId) with the lower-case ``x-mns-request-id`` header.

Long polls wait on the queue's condition variable (no polling loop): a send, a visibility change
or the next visibility deadline wakes them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from urllib.parse import unquote

from fnf_emulator.core import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    Request,
    Response,
    ServiceError,
)
from fnf_emulator.identities import Identities
from fnf_emulator.limits import (
    MNS_API_VERSION,
    MNS_DEFAULT_PRIORITY,
    MNS_MAX_BATCH_SIZE,
    MNS_MAX_DELAY_SECONDS,
    MNS_MAX_LIST_QUEUES,
    MNS_MAX_MESSAGE_SIZE,
    MNS_MAX_PRIORITY,
    MNS_MAX_QUEUE_NAME_LENGTH,
    MNS_MAX_RETENTION_SECONDS,
    MNS_MAX_VISIBILITY_TIMEOUT,
    MNS_MAX_WAIT_SECONDS,
    MNS_MIN_MESSAGE_SIZE_LIMIT,
    MNS_MIN_PRIORITY,
    MNS_MIN_RETENTION_SECONDS,
    MNS_MIN_VISIBILITY_TIMEOUT,
)
from fnf_emulator.mns import events as message_events
from fnf_emulator.mns import wire
from fnf_emulator.mns.auth import authenticate
from fnf_emulator.mns.events import MNSMessageEventLog
from fnf_emulator.mns.store import MNSDatabase, MNSQueue, QueueAttributes, StoredMessage

log = logging.getLogger(__name__)

DATABASE_FILE = "mns.sqlite3"

_QUEUE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_RECEIPT_HANDLE = re.compile(r"[0-9]+-[A-Za-z0-9_-]{22}")
_BATCH_ROOT = re.compile(rb"<(?:[\w.-]+:)?Messages[\s/>]")

# Queue attribute element -> (QueueAttributes field, low, high); LoggingEnabled is a boolean.
_QUEUE_ATTRIBUTES: dict[str, tuple[str, int, int]] = {
    "VisibilityTimeout": ("visibility_timeout", MNS_MIN_VISIBILITY_TIMEOUT, MNS_MAX_VISIBILITY_TIMEOUT),
    "MaximumMessageSize": ("maximum_message_size", MNS_MIN_MESSAGE_SIZE_LIMIT, MNS_MAX_MESSAGE_SIZE),
    "MessageRetentionPeriod": (
        "message_retention_period",
        MNS_MIN_RETENTION_SECONDS,
        MNS_MAX_RETENTION_SECONDS,
    ),
    "DelaySeconds": ("delay_seconds", 0, MNS_MAX_DELAY_SECONDS),
    "PollingWaitSeconds": ("polling_wait_seconds", 0, MNS_MAX_WAIT_SECONDS),
}
_MESSAGE_ELEMENTS = ("MessageBody", "DelaySeconds", "Priority")
_IGNORED_MESSAGE_ELEMENTS = ("MessageGroupId", "UserProperties", "SystemProperties")

_Answer = tuple[int, bytes, dict[str, str]]
"""What an operation answers: status, body, extra headers."""

_MESSAGE_NOT_EXIST = "Message not exist."
_STALE_HANDLE = "The receipt handle you provided is expired or no longer current; receive the message again."
_BAD_HANDLE = "The receipt handle you provided is not valid."


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_request_id() -> str:
    return secrets.token_hex(12).upper()


def parse_query(query: str) -> dict[str, str]:
    """Query parameters with lower-cased names, values unquoted without turning '+' into a space."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            params[unquote(key).lower()] = unquote(value)
    return params


def _integer(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ServiceError(
            400, "InvalidArgument", f"The value of {name} should between {low} and {high}, got {value!r}."
        )
    return number


def _body_md5(body: str) -> str:
    return hashlib.md5(body.encode()).hexdigest().upper()


def _check_body(body: str, limit: int) -> None:
    size = len(body.encode())
    if not 1 <= size <= limit:
        raise ServiceError(
            400,
            "InvalidArgument",
            f"The length of MessageBody should between 1 and {limit} bytes, got {size}.",
        )
    if wire.has_invalid_xml_chars(body):
        raise ServiceError(400, "InvalidArgument", "MessageBody holds characters that XML cannot carry.")


class MNSService:
    """Simple Message Queue, in memory or (with ``data_dir``) in ``DATA_DIR/mns.sqlite3``."""

    name = "mns"

    def __init__(
        self,
        access_keys: dict[str, str] | None = None,
        sts_tokens: dict[str, str] | None = None,
        data_dir: str | None = None,
        identities: Identities | None = None,
    ) -> None:
        self.identities = identities or Identities(
            access_keys or {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}, sts_tokens
        )
        self._lock = threading.Lock()
        self._queues: dict[str, MNSQueue] = {}
        self._seq = 0
        self._closed = False
        self._db: MNSDatabase | None = None
        self.message_events = MNSMessageEventLog()
        """Each message's sends, receives, visibility changes and deletes (admin API, memory only)."""
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)
            self._db = MNSDatabase(os.path.join(data_dir, DATABASE_FILE))
            self._load()
        self._operations: dict[str, Callable[[Request, str, dict[str, str]], _Answer]] = {
            "ListQueue": self._list_queue,
            "CreateQueue": self._create_queue,
            "SetQueueAttributes": self._set_queue_attributes,
            "GetQueueAttributes": self._get_queue_attributes,
            "DeleteQueue": self._delete_queue,
            "SendMessage": self._send_message,
            "BatchSendMessage": self._batch_send_message,
            "ReceiveMessage": self._receive_message,
            "BatchReceiveMessage": self._receive_message,
            "PeekMessage": self._peek_message,
            "BatchPeekMessage": self._peek_message,
            "DeleteMessage": self._delete_message,
            "BatchDeleteMessage": self._batch_delete_message,
            "ChangeMessageVisibility": self._change_message_visibility,
        }

    def _load(self) -> None:
        assert self._db is not None
        now = _now_ms()
        for name, attributes, create_time, last_modify_time, messages in self._db.load():
            queue = MNSQueue(name, attributes, create_time, last_modify_time, self._lock)
            for message in messages:
                queue.add(message, now)
                self._seq = max(self._seq, message.seq)
            self._queues[name] = queue
        log.info("Loaded %d MNS queues from %s", len(self._queues), self._db.path)

    # --- core.Service ----------------------------------------------------------------------
    def operation(self, request: Request) -> str:
        try:
            return self._route(request, parse_query(request.query))[0]
        except ServiceError:
            return "Unknown"

    def handle(self, request: Request) -> Response:
        request_id = _new_request_id()
        try:
            authenticate(request, self.identities)
            params = parse_query(request.query)
            operation, queue_name = self._route(request, params)
            status, body, headers = self._operations[operation](request, queue_name, params)
        except ServiceError as error:
            return self._error(request, error, request_id)
        return self._response(status, body, request_id, headers)

    def error_response(self, request: Request, error: ServiceError) -> Response:
        return self._error(request, error, _new_request_id())

    def reset(self) -> None:
        with self._lock:
            if self._closed:
                return
            queues = list(self._queues.values())
            self._queues.clear()
            self._seq = 0
            self.message_events.clear()
            if self._db is not None:
                self._db.clear()
            for queue in queues:
                queue.cond.notify_all()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for queue in self._queues.values():
                queue.cond.notify_all()
            if self._db is not None:
                self._db.close()

    # --- core.MNSSender --------------------------------------------------------------------
    def send_message(self, queue_name: str, body: str, priority: int, delay_seconds: int) -> str:
        if not MNS_MIN_PRIORITY <= priority <= MNS_MAX_PRIORITY:
            raise ServiceError(
                400,
                "InvalidArgument",
                f"The value of Priority should between {MNS_MIN_PRIORITY} and {MNS_MAX_PRIORITY}.",
            )
        if not 0 <= delay_seconds <= MNS_MAX_DELAY_SECONDS:
            raise ServiceError(
                400,
                "InvalidArgument",
                f"The value of DelaySeconds should between 0 and {MNS_MAX_DELAY_SECONDS}.",
            )
        with self._lock:
            queue = self._queue(queue_name)
            _check_body(body, queue.attributes.maximum_message_size)
            return self._enqueue(queue, [(body, priority, delay_seconds)])[0].message_id

    # --- plumbing --------------------------------------------------------------------------
    def _response(
        self, status: int, body: bytes, request_id: str, headers: dict[str, str] | None = None
    ) -> Response:
        out = {"x-mns-request-id": request_id, "x-mns-version": MNS_API_VERSION}
        if body:
            out["Content-Type"] = wire.CONTENT_TYPE
        if headers:
            out.update(headers)
        return Response(status, out, body)

    def _error(self, request: Request, error: ServiceError, request_id: str) -> Response:
        body = wire.error_document(error.code, error.message, request_id, self._host_url(request))
        response = self._response(error.status, body, request_id)
        response.error_code = error.code
        return response

    @staticmethod
    def _host_url(request: Request) -> str:
        return f"{request.scheme}://{request.headers.get('host', '127.0.0.1')}"

    def _route(self, request: Request, params: dict[str, str]) -> tuple[str, str]:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if parts == ["queues"] and method == "GET":
            return "ListQueue", ""
        if len(parts) == 2 and parts[0] == "queues":
            if method == "PUT":
                if params.get("metaoverride", "").lower() == "true":
                    return "SetQueueAttributes", parts[1]
                return "CreateQueue", parts[1]
            if method == "GET":
                return "GetQueueAttributes", parts[1]
            if method == "DELETE":
                return "DeleteQueue", parts[1]
        if len(parts) == 3 and parts[0] == "queues" and parts[2] == "messages":
            batch = "numofmessages" in params
            if method == "POST":
                return ("BatchSendMessage" if _BATCH_ROOT.search(request.body) else "SendMessage"), parts[1]
            if method == "GET":
                if params.get("peekonly", "").lower() == "true":
                    return ("BatchPeekMessage" if batch else "PeekMessage"), parts[1]
                return ("BatchReceiveMessage" if batch else "ReceiveMessage"), parts[1]
            if method == "DELETE":
                return ("DeleteMessage" if "receipthandle" in params else "BatchDeleteMessage"), parts[1]
            if method == "PUT":
                return "ChangeMessageVisibility", parts[1]
        raise ServiceError(
            400, "InvalidRequestURL", f"Http request URL format invalid: {method} {request.path}."
        )

    def _check_open(self) -> None:
        """Refuse work once closed (storage is gone); the caller holds the lock."""
        if self._closed:
            raise ServiceError(503, "ServiceUnavailable", "The emulator is stopping.")

    def _queue(self, name: str) -> MNSQueue:
        """The named queue; the caller holds the lock."""
        self._check_open()
        queue = self._queues.get(name)
        if queue is None:
            raise ServiceError(404, "QueueNotExist", f"The queue name you provided is not exist: {name}.")
        return queue

    def _purge(self, queue: MNSQueue, now: int, force: bool = False) -> None:
        gone = queue.purge_expired(now, force=force)
        for message in gone:
            self._record(queue, message, message_events.EXPIRED, now)
        if gone and self._db is not None:
            self._db.delete_messages(queue.name, (m.message_id for m in gone))

    def _record(self, queue: MNSQueue, message: StoredMessage, event: str, now: int) -> None:
        self.message_events.record(queue.name, message.message_id, event, now, message.dequeue_count)

    def _enqueue(self, queue: MNSQueue, items: Iterable[tuple[str, int, int]]) -> list[StoredMessage]:
        """Store messages (body, priority, delay seconds); the caller holds the lock."""
        now = _now_ms()
        stored = []
        for body, priority, delay in items:
            self._seq += 1
            message = StoredMessage(
                message_id=uuid.uuid4().hex.upper(),
                body=body,
                body_md5=_body_md5(body),
                priority=priority,
                seq=self._seq,
                enqueue_time=now,
                visible_at=now + delay * 1000,
            )
            stored.append(message)
        if self._db is not None:
            self._db.insert_messages(queue.name, stored)
        for message in stored:
            queue.add(message, now)
            self._record(queue, message, message_events.SENT, now)
        queue.cond.notify_all()
        return stored

    # --- queues ----------------------------------------------------------------------------
    @staticmethod
    def _parse_queue_attributes(request: Request) -> dict[str, object]:
        if not request.body.strip():
            return {}
        values = wire.fields(wire.parse(request.body, "Queue"), (*_QUEUE_ATTRIBUTES, "LoggingEnabled"))
        parsed: dict[str, object] = {}
        for element, value in values.items():
            if element == "LoggingEnabled":
                if value.strip().lower() not in ("true", "false"):
                    raise ServiceError(
                        400,
                        "InvalidArgument",
                        f"The value of LoggingEnabled should be True or False, got {value!r}.",
                    )
                parsed["logging_enabled"] = value.strip().lower() == "true"
            else:
                field, low, high = _QUEUE_ATTRIBUTES[element]
                parsed[field] = _integer(value, element, low, high)
        return parsed

    def _create_queue(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        if not 1 <= len(name) <= MNS_MAX_QUEUE_NAME_LENGTH:
            raise ServiceError(
                400,
                "QueueNameLengthError",
                f"Queue name length should between 1 and {MNS_MAX_QUEUE_NAME_LENGTH}.",
            )
        if not _QUEUE_NAME.fullmatch(name):
            raise ServiceError(
                400,
                "InvalidQueueName",
                f"The queue name you provided is invalid: {name!r}. "
                "QueueName should start with alpha and contain only alpha, digit or -.",
            )
        attributes = QueueAttributes(**self._parse_queue_attributes(request))  # type: ignore[arg-type]
        location = {"Location": f"{self._host_url(request)}/queues/{name}"}
        with self._lock:
            self._check_open()
            existing = self._queues.get(name)
            if existing is not None:
                if existing.attributes != attributes:
                    raise ServiceError(
                        409,
                        "QueueAlreadyExist",
                        f"The queue you want to create is already exist with other attributes: {name}.",
                    )
                return 204, b"", location
            now_s = int(time.time())
            queue = MNSQueue(name, attributes, now_s, now_s, self._lock)
            if self._db is not None:
                self._db.save_queue(queue)
            self._queues[name] = queue
        return 201, b"", location

    def _set_queue_attributes(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        changes = self._parse_queue_attributes(request)
        with self._lock:
            queue = self._queue(name)
            for field, value in changes.items():
                setattr(queue.attributes, field, value)
            queue.last_modify_time = int(time.time())
            if self._db is not None:
                self._db.save_queue(queue)
            queue.cond.notify_all()
        return 204, b"", {}

    def _queue_meta(self, queue: MNSQueue, now: int) -> dict[str, object]:
        active, inactive, delayed = queue.counts(now)
        a = queue.attributes
        return {
            "QueueName": queue.name,
            "CreateTime": queue.create_time,
            "LastModifyTime": queue.last_modify_time,
            "VisibilityTimeout": a.visibility_timeout,
            "MaximumMessageSize": a.maximum_message_size,
            "MessageRetentionPeriod": a.message_retention_period,
            "DelaySeconds": a.delay_seconds,
            "PollingWaitSeconds": a.polling_wait_seconds,
            "ActiveMessages": active,
            "InactiveMessages": inactive,
            "DelayMessages": delayed,
            "LoggingEnabled": "True" if a.logging_enabled else "False",
        }

    def _get_queue_attributes(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        with self._lock:
            queue = self._queue(name)
            now = _now_ms()
            self._purge(queue, now, force=True)
            meta = self._queue_meta(queue, now)
        return 200, wire.values_document("Queue", meta), {}

    def _delete_queue(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        with self._lock:
            self._check_open()
            queue = self._queues.pop(name, None)
            if queue is not None:
                if self._db is not None:
                    self._db.delete_queue(name)
                queue.cond.notify_all()
        return 204, b"", {}

    def _list_queue(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        headers = request.headers
        prefix = headers.get("x-mns-prefix", "")
        marker = headers.get("x-mns-marker", "")
        limit = MNS_MAX_LIST_QUEUES
        if "x-mns-ret-number" in headers:
            limit = _integer(headers["x-mns-ret-number"], "x-mns-ret-number", 1, MNS_MAX_LIST_QUEUES)
        with_meta = headers.get("x-mns-with-meta", "").lower() == "true"
        base = self._host_url(request)
        with self._lock:
            self._check_open()
            names = sorted(n for n in self._queues if n.startswith(prefix) and n >= marker)
            page, rest = names[:limit], names[limit:]
            now = _now_ms()
            items = []
            for queue_name in page:
                values: dict[str, object] = {"QueueURL": f"{base}/queues/{queue_name}"}
                if with_meta:
                    values.update(self._queue_meta(self._queues[queue_name], now))
                items.append(wire.element("Queue", values))
        if rest:
            items.append(f"<NextMarker>{wire.text(rest[0])}</NextMarker>")
        return 200, wire.document("Queues", "".join(items)), {}

    # --- messages --------------------------------------------------------------------------
    def _parse_message(self, element: ElementTree.Element, queue: MNSQueue) -> tuple[str, int, int]:
        values = wire.fields(element, _MESSAGE_ELEMENTS, _IGNORED_MESSAGE_ELEMENTS)
        if "MessageBody" not in values:
            raise ServiceError(400, "InvalidArgument", "MessageBody is required.")
        body = values["MessageBody"]
        _check_body(body, queue.attributes.maximum_message_size)
        priority = MNS_DEFAULT_PRIORITY
        if "Priority" in values:
            priority = _integer(values["Priority"], "Priority", MNS_MIN_PRIORITY, MNS_MAX_PRIORITY)
        delay = queue.attributes.delay_seconds
        if "DelaySeconds" in values:
            delay = _integer(values["DelaySeconds"], "DelaySeconds", 0, MNS_MAX_DELAY_SECONDS)
        return body, priority, delay

    def _send_message(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        root = wire.parse(request.body, "Message")
        with self._lock:
            queue = self._queue(name)
            message = self._enqueue(queue, [self._parse_message(root, queue)])[0]
        return (
            201,
            wire.values_document(
                "Message", {"MessageId": message.message_id, "MessageBodyMD5": message.body_md5}
            ),
            {},
        )

    def _batch_send_message(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        elements = wire.children(wire.parse(request.body, "Messages"), "Message")
        if not 1 <= len(elements) <= MNS_MAX_BATCH_SIZE:
            raise ServiceError(
                400,
                "InvalidArgument",
                f"The count of Message should between 1 and {MNS_MAX_BATCH_SIZE}, got {len(elements)}.",
            )
        with self._lock:
            queue = self._queue(name)
            items = [self._parse_message(e, queue) for e in elements]
            stored = self._enqueue(queue, items)
        inner = "".join(
            wire.element("Message", {"MessageId": m.message_id, "MessageBodyMD5": m.body_md5}) for m in stored
        )
        return 201, wire.document("Messages", inner), {}

    @staticmethod
    def _message_values(message: StoredMessage, received: bool) -> dict[str, object]:
        values: dict[str, object] = {"MessageId": message.message_id}
        if received:
            values["ReceiptHandle"] = message.receipt_handle
        values.update(
            MessageBodyMD5=message.body_md5,
            MessageBody=message.body,
            EnqueueTime=message.enqueue_time,
            FirstDequeueTime=message.first_dequeue_time,
        )
        if received:
            values["NextVisibleTime"] = message.visible_at
        values.update(DequeueCount=message.dequeue_count, Priority=message.priority)
        return values

    def _messages_body(self, messages: list[StoredMessage], batch: bool, received: bool) -> bytes:
        if batch:
            return wire.document(
                "Messages",
                "".join(wire.element("Message", self._message_values(m, received)) for m in messages),
            )
        return wire.values_document("Message", self._message_values(messages[0], received))

    def _receive_message(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        batch = "numofmessages" in params
        count = _integer(params["numofmessages"], "numOfMessages", 1, MNS_MAX_BATCH_SIZE) if batch else 1
        wait = None
        if "waitseconds" in params:
            wait = _integer(params["waitseconds"], "waitseconds", 0, MNS_MAX_WAIT_SECONDS)
        messages = self._receive(name, count, wait)
        if not messages:
            raise ServiceError(404, "MessageNotExist", _MESSAGE_NOT_EXIST)
        return 200, self._messages_body(messages, batch, received=True), {}

    def _receive(self, name: str, count: int, wait: int | None) -> list[StoredMessage]:
        with self._lock:
            queue = self._queue(name)
            deadline = time.monotonic() + (queue.attributes.polling_wait_seconds if wait is None else wait)
            while True:
                now = _now_ms()
                self._purge(queue, now)
                messages = queue.take(now, count)
                if messages:
                    until = now + queue.attributes.visibility_timeout * 1000
                    for message in messages:
                        message.dequeue_count += 1
                        if not message.first_dequeue_time:
                            message.first_dequeue_time = now
                        queue.hide(message, until, self._new_handle(message))
                        self._record(queue, message, message_events.RECEIVED, now)
                    if self._db is not None:
                        self._db.update_messages(name, messages)
                    return messages
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return []
                due = queue.next_due()
                if due is not None:
                    remaining = min(remaining, max(due - now, 1) / 1000)
                queue.cond.wait(remaining)
                if self._closed:
                    return []
                if self._queues.get(name) is not queue:
                    raise ServiceError(404, "QueueNotExist", f"The queue was deleted while waiting: {name}.")

    @staticmethod
    def _new_handle(message: StoredMessage) -> str:
        return f"{message.dequeue_count}-{secrets.token_urlsafe(16)}"

    def _peek_message(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        batch = "numofmessages" in params
        count = _integer(params["numofmessages"], "numOfMessages", 1, MNS_MAX_BATCH_SIZE) if batch else 1
        with self._lock:
            queue = self._queue(name)
            now = _now_ms()
            self._purge(queue, now)
            messages = queue.peek(now, count)
            if not messages:
                raise ServiceError(404, "MessageNotExist", _MESSAGE_NOT_EXIST)
            return 200, self._messages_body(messages, batch, received=False), {}

    @staticmethod
    def _handle_error(handle: str) -> tuple[str, str] | None:
        if not _RECEIPT_HANDLE.fullmatch(handle):
            return "ReceiptHandleError", _BAD_HANDLE
        return None

    def _current_message(self, queue: MNSQueue, handle: str, now: int) -> StoredMessage:
        bad = self._handle_error(handle)
        if bad:
            raise ServiceError(400, *bad)
        message = queue.by_handle(handle, now)
        if message is None:
            raise ServiceError(404, "MessageNotExist", _STALE_HANDLE)
        return message

    def _delete_message(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        handle = params.get("receipthandle", "")
        if not handle:
            raise ServiceError(400, "MissingReceiptHandle", "ReceiptHandle is required.")
        with self._lock:
            queue = self._queue(name)
            now = _now_ms()
            message = self._current_message(queue, handle, now)
            queue.remove(message)
            self._record(queue, message, message_events.DELETED, now)
            if self._db is not None:
                self._db.delete_messages(name, [message.message_id])
        return 204, b"", {}

    def _batch_delete_message(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        handles = [
            (e.text or "").strip()
            for e in wire.children(wire.parse(request.body, "ReceiptHandles"), "ReceiptHandle")
        ]
        if not 1 <= len(handles) <= MNS_MAX_BATCH_SIZE:
            raise ServiceError(
                400,
                "InvalidArgument",
                f"The count of ReceiptHandle should between 1 and {MNS_MAX_BATCH_SIZE}, got {len(handles)}.",
            )
        errors = []
        with self._lock:
            queue = self._queue(name)
            now = _now_ms()
            deleted = []
            for handle in handles:
                bad = self._handle_error(handle)
                message = None if bad else queue.by_handle(handle, now)
                if bad or message is None:
                    code, text = bad or ("MessageNotExist", _STALE_HANDLE)
                    errors.append(
                        wire.element(
                            "Error", {"ErrorCode": code, "ErrorMessage": text, "ReceiptHandle": handle or "-"}
                        )
                    )
                    continue
                queue.remove(message)
                self._record(queue, message, message_events.DELETED, now)
                deleted.append(message.message_id)
            if deleted and self._db is not None:
                self._db.delete_messages(name, deleted)
        if errors:
            return 404, wire.document("Errors", "".join(errors)), {}
        return 204, b"", {}

    def _change_message_visibility(self, request: Request, name: str, params: dict[str, str]) -> _Answer:
        handle = params.get("receipthandle", "")
        if not handle:
            raise ServiceError(400, "MissingReceiptHandle", "ReceiptHandle is required.")
        if "visibilitytimeout" not in params:
            raise ServiceError(400, "MissingVisibilityTimeout", "VisibilityTimeout is required.")
        timeout = _integer(
            params["visibilitytimeout"],
            "VisibilityTimeout",
            MNS_MIN_VISIBILITY_TIMEOUT,
            MNS_MAX_VISIBILITY_TIMEOUT,
        )
        with self._lock:
            queue = self._queue(name)
            now = _now_ms()
            message = self._current_message(queue, handle, now)
            queue.hide(message, now + timeout * 1000, self._new_handle(message))
            self._record(queue, message, message_events.VISIBILITY_CHANGED, now)
            if self._db is not None:
                self._db.update_messages(name, [message])
            queue.cond.notify_all()
            values = {"ReceiptHandle": message.receipt_handle, "NextVisibleTime": message.visible_at}
        return 200, wire.values_document("ChangeVisibility", values), {}

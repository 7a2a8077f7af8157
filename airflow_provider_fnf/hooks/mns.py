"""Hook for Alibaba Cloud Simple Message Queue (formerly MNS), over ``aliyun-mns-sdk``.

The SDK is not thread-safe (one ``http.client`` connection per client), so the hook keeps one
SDK ``Account`` per thread. Its socket timeout always exceeds the longest long poll. Bodies are
never decoded by the SDK: a body that does not decode is returned as raw text with
``decode_error`` set, and its receipt handle is kept.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args

from airflow_provider_fnf.credentials import (
    AlibabaCloudCredentials,
    RAMRoleSettings,
    SDKCredentials,
    credential_source,
    credentials_from_connection,
    role_from_connection,
)
from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    FnFProviderError,
    MNSAuthenticationError,
    MNSEndpointUnreachableError,
    MNSError,
    MNSQueueNotFoundError,
    MNSReceiptHandleError,
)
from airflow_provider_fnf.hooks._common import (
    RETRY_BASE_DELAY_SECONDS,
    ConnectionSettingsHook,
    backoff_delay,
    extra_str,
    untrusted_certificate_advice,
)
from airflow_provider_fnf.limits import (
    MNS_MAX_BATCH_SIZE,
    MNS_MAX_DELAY_SECONDS,
    MNS_MAX_MESSAGE_SIZE,
    MNS_MAX_PRIORITY,
    MNS_MAX_RETENTION_SECONDS,
    MNS_MAX_VISIBILITY_TIMEOUT,
    MNS_MAX_WAIT_SECONDS,
    MNS_MIN_MESSAGE_SIZE_LIMIT,
    MNS_MIN_PRIORITY,
    MNS_MIN_RETENTION_SECONDS,
    MNS_MIN_VISIBILITY_TIMEOUT,
)

if TYPE_CHECKING:
    from mns.account import Account
    from mns.queue import Queue

log = logging.getLogger(__name__)

T = TypeVar("T")
BodyEncoding = Literal["raw", "base64", "auto"]
BODY_ENCODINGS: tuple[str, ...] = get_args(BodyEncoding)

_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSecurityToken",
        "SecurityTokenExpired",
        "SecurityTokenMalformed",
        "InvalidAuthorizationHeader",
        "TimeExpired",
    }
)
MNS_EXPIRED_TOKEN_CODES = frozenset({"SecurityTokenExpired"})
"""MNS's answer to a request signed with temporary credentials past their expiration
(*unconfirmed*: MNS's published codes name none; this is OSS's, and the emulator's): the hook
renews the credentials once and sends the request again."""
_RETRYABLE_SERVER_CODES = frozenset(
    {"InternalError", "InternalServerError", "ServiceUnavailable", "ServerBusy", "QpsLimitExceeded"}
)
_RECEIPT_HANDLE_CODES = frozenset({"MessageNotExist", "ReceiptHandleError"})


# --- the message ------------------------------------------------------------------------
@dataclass(frozen=True)
class MNSMessage:
    """One message as received (or peeked) from a queue; JSON-safe via :meth:`to_dict`.

    Times are epoch milliseconds. ``receipt_handle`` and ``next_visible_time`` are ``None`` for a
    peeked message; ``first_dequeue_time`` is ``None`` before the first receive.
    ``decode_error`` is set when the hook's body decoding failed: ``body`` is then the raw text
    exactly as stored, and the receipt handle is still valid.
    """

    message_id: str
    receipt_handle: str | None
    body: str
    dequeue_count: int
    enqueue_time: int
    first_dequeue_time: int | None
    next_visible_time: int | None
    priority: int
    body_md5: str | None
    decode_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MNSMessage:
        """Rebuild a message from :meth:`to_dict`'s output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"message_id", "body"} - set(data)
        if missing:
            raise ValueError(f"Not an MNS message dict: missing {sorted(missing)}")
        values = {k: v for k, v in data.items() if k in names}
        values.setdefault("receipt_handle", None)
        values.setdefault("dequeue_count", 0)
        values.setdefault("enqueue_time", 0)
        values.setdefault("first_dequeue_time", None)
        values.setdefault("next_visible_time", None)
        values.setdefault("priority", 0)
        values.setdefault("body_md5", None)
        return cls(**values)


# --- credentials for the SDK ------------------------------------------------------------
class _MNSCredentialsProvider(SDKCredentials):
    """The MNS SDK's credentials provider (``mns.auth.CredentialsProvider``), asked on every
    request (see :class:`~airflow_provider_fnf.credentials.SDKCredentials`).

    The MNS SDK sends a ``security-token`` header unless the token is exactly ``""``: ``None``
    (plain AccessKey pairs) becomes ``""``.
    """

    unavailable_error = MNSAuthenticationError

    def get_credentials(self) -> Any:
        from mns.auth import Credentials

        issued = self.issue()
        return Credentials(issued.access_key_id, issued.access_key_secret, issued.security_token or "")


@dataclass(frozen=True)
class _MNSSettings:
    endpoint: str
    credentials: AlibabaCloudCredentials | None
    """Static credentials (the source of ``role`` if set), or None for the default chain."""
    role: RAMRoleSettings | None = None
    """The RAM role assumed with them (extra ``role_arn``...), if any."""

    @property
    def is_https(self) -> bool:
        return self.endpoint.startswith("https://")


# --- the hook ---------------------------------------------------------------------------
class MNSHook(ConnectionSettingsHook[_MNSSettings]):
    """Talk to Simple Message Queue (MNS) queues.

    Connection (type ``mns``): login = AccessKey ID, password = AccessKey Secret, extra
    ``{"endpoint": "http(s)://host[:port]"}`` or ``{"account_id": ..., "region": ...}``, and
    optionally ``"security_token"`` (STS). With no login and password, the alibabacloud-credentials
    default chain is used. With ``"role_arn"`` (and optionally ``role_session_name``,
    ``external_id``, ``session_duration``, ``policy``, ``sts_endpoint``, ``sts_region``) those
    credentials assume the RAM role and the hook signs with the role's, renewed before they expire
    (:mod:`airflow_provider_fnf.credentials`).

    :param mns_conn_id: the ``mns`` connection to use.
    :param body_encoding: how received bodies are decoded and sent bodies encoded: ``raw`` (the
        default: text as is, which is how Serverless Workflow sends its messages), ``base64``
        (sent base64-encoded; received bodies must decode, else ``decode_error`` is set) or
        ``auto`` (sent raw; a received body that is strict base64 of UTF-8 text is decoded).
    :param max_attempts: attempts per call on network errors and server-side (5xx) errors.
    """

    conn_name_attr = "mns_conn_id"
    default_conn_name = "mns_default"
    conn_type = "mns"
    hook_name = "Alibaba Cloud Simple Message Queue (MNS)"

    socket_timeout_seconds: int = MNS_MAX_WAIT_SECONDS + 10
    """Socket timeout of every SDK client: always longer than the longest long poll."""

    def __init__(
        self,
        mns_conn_id: str = default_conn_name,
        *,
        body_encoding: BodyEncoding = "raw",
        max_attempts: int = 3,
    ) -> None:
        super().__init__()
        if body_encoding not in BODY_ENCODINGS:
            raise FnFConfigurationError(
                f"body_encoding={body_encoding!r} is not one of {', '.join(BODY_ENCODINGS)} "
                f"(MNSHook for connection {mns_conn_id!r})",
                conn_id=mns_conn_id,
            )
        if max_attempts < 1:
            raise FnFConfigurationError(
                f"max_attempts must be at least 1, got {max_attempts}", conn_id=mns_conn_id
            )
        self.mns_conn_id = mns_conn_id
        self.body_encoding: BodyEncoding = body_encoding
        self.max_attempts = max_attempts
        self.retry_base_delay = RETRY_BASE_DELAY_SECONDS
        self._local = threading.local()
        self._credentials_adapter: _MNSCredentialsProvider | None = None

    # --- connection and clients --------------------------------------------------------
    def _settings_from(self, conn: Any) -> _MNSSettings:
        extra = conn.extra_dejson or {}
        credentials = credentials_from_connection(self.mns_conn_id, conn.login, conn.password, extra)
        return _MNSSettings(
            endpoint=self._endpoint_from(extra),
            credentials=credentials,
            role=role_from_connection(self.mns_conn_id, extra),
        )

    def _endpoint_from(self, extra: Mapping[str, Any]) -> str:
        endpoint = extra_str(dict(extra), "endpoint")
        if endpoint:
            endpoint = endpoint.rstrip("/")
            if not endpoint.startswith(("http://", "https://")) or len(endpoint.split("://", 1)[1]) == 0:
                raise FnFConfigurationError(
                    f"Connection {self.mns_conn_id!r}: extra 'endpoint' must be a whole URL "
                    f"http(s)://host[:port], got {endpoint!r}",
                    conn_id=self.mns_conn_id,
                )
            if "/" in endpoint.split("://", 1)[1]:
                raise FnFConfigurationError(
                    f"Connection {self.mns_conn_id!r}: extra 'endpoint' must not contain a path, got "
                    f"{endpoint!r} (use http(s)://host[:port])",
                    conn_id=self.mns_conn_id,
                )
            return endpoint
        account_id = extra_str(dict(extra), "account_id")
        region = extra_str(dict(extra), "region")
        if account_id and region:
            return f"https://{account_id}.mns.{region}.aliyuncs.com"
        raise FnFConfigurationError(
            f"Connection {self.mns_conn_id!r} has no MNS endpoint: set extra 'endpoint' "
            "(http(s)://host[:port]) or both 'account_id' and 'region'"
            + (f" (only {'account_id' if account_id else 'region'} is set)" if account_id or region else ""),
            conn_id=self.mns_conn_id,
        )

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def _credentials_provider(self) -> _MNSCredentialsProvider:
        """The one provider of this hook's SDK clients (every thread's)."""
        settings = self.settings
        with self._settings_lock:
            if self._credentials_adapter is None:
                source = credential_source(self.mns_conn_id, settings.credentials, settings.role)
                self._credentials_adapter = _MNSCredentialsProvider(self.mns_conn_id, source)
            return self._credentials_adapter

    def get_conn(self) -> Account:
        """This thread's SDK ``Account`` (created on first use in each thread)."""
        account = getattr(self._local, "account", None)
        if account is None:
            from mns.account import Account

            settings = self.settings
            account = Account(settings.endpoint, credentials_provider=self._credentials_provider())
            client = account.get_client()
            client.set_connection_timeout(self.socket_timeout_seconds)
            if settings.is_https:
                # The SDK sets no timeout on https; http.client honours the attribute on connect.
                client.http.conn.timeout = self.socket_timeout_seconds
            self._local.account = account
        return account

    def _queue(self, queue_name: str) -> Queue:
        _check_queue_name(queue_name)
        queue = self.get_conn().get_queue(queue_name)
        queue.set_encoding(False)  # we decode ourselves, so a bad body never costs the handle
        return queue

    # --- retries and errors ------------------------------------------------------------
    def _call(self, operation: str, queue_name: str | None, fn: Callable[[bool], T]) -> T:
        """Run ``fn`` with bounded retries on network and 5xx errors; map SDK errors to ours.

        ``fn`` gets ``True`` when an earlier attempt failed in a way that may have reached the
        service (its effect may already be applied).
        """
        from mns.mns_exception import MNSClientNetworkException, MNSExceptionBase

        attempt = 0
        ambiguous = False
        renewed = False
        while True:
            attempt += 1
            try:
                return fn(ambiguous)
            except MNSExceptionBase as exc:
                if (
                    not renewed
                    and exc.type in MNS_EXPIRED_TOKEN_CODES
                    and self._renew_credentials(operation, queue_name)
                ):
                    renewed = True
                    attempt -= 1  # the request was refused before it did anything
                    continue
                if attempt < self.max_attempts and is_retryable_mns_error(exc):
                    delay = backoff_delay(attempt, base=self.retry_base_delay)
                    log.warning(
                        "MNS %s on queue %s failed (%s: %s), attempt %d of %d; retrying in %.2f s",
                        operation,
                        queue_name,
                        type(exc).__name__,
                        exc.type,
                        attempt,
                        self.max_attempts,
                        delay,
                    )
                    ambiguous = ambiguous or isinstance(exc, MNSClientNetworkException)
                    time.sleep(delay)
                    continue
                raise self._translate(exc, operation, queue_name, attempt) from exc

    def _renew_credentials(self, operation: str, queue_name: str | None) -> bool:
        """After MNS answered "security token expired": renew the credentials this thread signed
        with, once; True when a retry will sign with other ones."""
        adapter = self._credentials_provider()
        renewed = adapter.source.refresh(adapter.last_issued)
        log.info(
            "MNS %s on queue %s met expired credentials of connection %s; %s",
            operation,
            queue_name,
            self.mns_conn_id,
            "renewed them, sending it again" if renewed else "none newer are to be had",
        )
        return renewed

    def _translate(
        self, exc: Exception, operation: str, queue_name: str | None, attempts: int
    ) -> FnFProviderError:
        from mns.mns_exception import (
            MNSClientNetworkException,
            MNSClientParameterException,
            MNSServerException,
        )

        conn_id = self.mns_conn_id
        endpoint = self.settings.endpoint
        where = f"queue {queue_name!r}" if queue_name else "the account"
        code = getattr(exc, "type", None)
        request_id = getattr(exc, "req_id", None)
        detail = getattr(exc, "message", "") or str(exc)
        common: dict[str, Any] = {
            "conn_id": conn_id,
            "resource": queue_name,
            "code": code,
            "request_id": request_id,
        }
        if isinstance(exc, MNSServerException):
            if code in _AUTH_CODES:
                return MNSAuthenticationError(
                    f"MNS rejected the credentials of connection {conn_id!r} ({code}: {detail}) on "
                    f"{operation} for {where} at {endpoint}: {self._credentials_advice(code)}",
                    status=403,
                    **common,
                )
            if code == "QueueNotExist":
                return MNSQueueNotFoundError(
                    f"MNS queue {queue_name!r} does not exist at {endpoint} (connection {conn_id!r}, "
                    f"{operation}): check the queue name and the endpoint's account and region, or "
                    "create the queue.",
                    status=404,
                    **common,
                )
            if code in _RECEIPT_HANDLE_CODES:
                return MNSReceiptHandleError(
                    f"MNS {operation} on {where}: the receipt handle is no longer valid ({code}). The "
                    "message was deleted already, or its visibility timeout expired and it was received "
                    "again (only the newest receipt handle works).",
                    status=404 if code == "MessageNotExist" else 400,
                    **common,
                )
            return MNSError(
                f"MNS {operation} on {where} failed with {code}: {detail} (connection {conn_id!r}, "
                f"endpoint {endpoint}, request id {request_id}"
                + (f", after {attempts} attempts" if attempts > 1 else "")
                + ")",
                **common,
            )
        if isinstance(exc, MNSClientNetworkException) and code == "NetWorkException":
            return MNSEndpointUnreachableError(
                f"MNS endpoint {endpoint} (connection {conn_id!r}) did not answer {operation} on "
                f"{where} after {attempts} attempt(s): {detail}. Check the connection's extra "
                "'endpoint' (or account_id and region), the network, and that the service is running."
                + untrusted_certificate_advice(str(detail)),
                **common,
            )
        if isinstance(exc, MNSClientParameterException):
            return FnFConfigurationError(
                f"MNS {operation} on {where}: the SDK rejected an argument ({code}: {detail}) "
                f"(connection {conn_id!r})",
                **common,
            )
        # RespDataDamaged and the like carry the whole response, message bodies (and the task
        # tokens in them) included: say how much, not what.
        return MNSError(
            f"MNS {operation} on {where} failed ({code}: a response of {len(str(detail))} characters "
            f"that the SDK could not read) (connection {conn_id!r}, endpoint {endpoint}): check that the "
            "endpoint is an MNS endpoint and not a proxy or another service",
            **common,
        )

    def _credentials_advice(self, code: str | None) -> str:
        role = self.settings.role
        if role is None:
            return (
                "check the AccessKey ID (login), the AccessKey Secret (password), the STS security_token "
                "in extra, the machine's clock, and that the identity may use this queue."
            )
        if code in MNS_EXPIRED_TOKEN_CODES:
            return (
                f"the STS session of RAM role {role.role_arn} expired and a renewed one was refused as "
                "well: check the machine's clock (it must agree with the service's) and session_duration."
            )
        return (
            f"the connection signs as RAM role {role.role_arn}: check that the role's policy allows this "
            "operation on the queue (mns:ReceiveMessage, mns:DeleteMessage...), the inline policy in "
            "extra if any, and that role_arn names the account that owns the queue."
        )

    # --- messages ----------------------------------------------------------------------
    def send_message(
        self,
        queue_name: str,
        body: str,
        *,
        priority: int | None = None,
        delay_seconds: int | None = None,
    ) -> str:
        """Send one message; return its message id."""
        from mns.queue import Message

        wire_body = self._prepare_body(queue_name, body)
        _check_send_options(queue_name, priority, delay_seconds)
        message = Message(wire_body, delay_seconds, priority)
        queue = self._queue(queue_name)
        sent = self._call("SendMessage", queue_name, lambda _: queue.send_message(message))
        log.info("Sent message %s to MNS queue %s", sent.message_id, queue_name)
        return cast(str, sent.message_id)

    def send_messages(
        self,
        queue_name: str,
        bodies: Sequence[str],
        *,
        priority: int | None = None,
        delay_seconds: int | None = None,
    ) -> list[str]:
        """Send many messages in batches of at most 16 (and at most 64 KiB); return their ids in order.

        If a batch partly fails, :class:`MNSError` says which bodies (by index) were not sent;
        earlier batches stay sent.
        """
        from mns.mns_exception import MNSServerException
        from mns.queue import Message

        _check_send_options(queue_name, priority, delay_seconds)
        wire = [self._prepare_body(queue_name, b, index=i) for i, b in enumerate(bodies)]
        queue = self._queue(queue_name)
        ids: list[str] = []
        for start, chunk in _chunks_by_size(wire):

            def send(_: bool, chunk: list[str] = chunk) -> list[Any]:
                return cast(
                    "list[Any]",
                    queue.batch_send_message([Message(b, delay_seconds, priority) for b in chunk]),
                )

            try:
                sent = self._call("BatchSendMessage", queue_name, send)
            except MNSError as err:
                cause = err.__cause__
                if isinstance(cause, MNSServerException) and cause.sub_errors:
                    failed = [
                        f"#{start + i}: {e.get('ErrorCode')} {e.get('ErrorMessage')}"
                        for i, e in enumerate(cause.sub_errors)
                        if "ErrorCode" in e
                    ]
                    ok = [e.get("MessageId") for e in cause.sub_errors if "MessageId" in e]
                    raise MNSError(
                        f"MNS BatchSendMessage to queue {queue_name!r}: {len(failed)} of {len(chunk)} "
                        f"messages were not sent ({'; '.join(failed)}); sent before this batch: "
                        f"{len(ids)}, sent in this batch: {ok} (connection {self.mns_conn_id!r})",
                        conn_id=self.mns_conn_id,
                        resource=queue_name,
                        code=cause.type,
                        request_id=cause.req_id,
                    ) from cause
                raise
            ids.extend(m.message_id for m in sent)
        log.info("Sent %d messages to MNS queue %s", len(ids), queue_name)
        return ids

    def receive_messages(
        self, queue_name: str, max_messages: int = 1, *, wait_seconds: int | None = None
    ) -> list[MNSMessage]:
        """Receive up to ``max_messages`` (1..16), long polling up to ``wait_seconds`` (0..30; None:
        the queue's PollingWaitSeconds). An empty queue gives ``[]``."""
        from mns.mns_exception import MNSServerException

        _check_range(queue_name, "max_messages", max_messages, 1, MNS_MAX_BATCH_SIZE)
        if wait_seconds is not None:
            _check_range(queue_name, "wait_seconds", wait_seconds, 0, MNS_MAX_WAIT_SECONDS)
        wait = -1 if wait_seconds is None else wait_seconds
        queue = self._queue(queue_name)

        def receive(_: bool) -> list[Any]:
            try:
                if max_messages == 1:
                    return [queue.receive_message(wait)]
                return cast("list[Any]", queue.batch_receive_message(max_messages, wait))
            except MNSServerException as exc:
                if exc.type == "MessageNotExist":
                    return []
                raise

        raw = self._call(
            "ReceiveMessage" if max_messages == 1 else "BatchReceiveMessage", queue_name, receive
        )
        messages = [self._to_message(queue_name, m, received=True) for m in raw]
        if messages:
            log.info(
                "Received %d message(s) from MNS queue %s: %s",
                len(messages),
                queue_name,
                ", ".join(m.message_id for m in messages),
            )
        return messages

    def peek_messages(self, queue_name: str, max_messages: int = 1) -> list[MNSMessage]:
        """Look at up to ``max_messages`` (1..16) active messages without receiving them."""
        from mns.mns_exception import MNSServerException

        _check_range(queue_name, "max_messages", max_messages, 1, MNS_MAX_BATCH_SIZE)
        queue = self._queue(queue_name)

        def peek(_: bool) -> list[Any]:
            try:
                if max_messages == 1:
                    return [queue.peek_message()]
                return cast("list[Any]", queue.batch_peek_message(max_messages))
            except MNSServerException as exc:
                if exc.type == "MessageNotExist":
                    return []
                raise

        raw = self._call("PeekMessage" if max_messages == 1 else "BatchPeekMessage", queue_name, peek)
        return [self._to_message(queue_name, m, received=False) for m in raw]

    def delete_message(self, queue_name: str, receipt_handle: str) -> None:
        """Delete a received message by its (newest) receipt handle.

        :raises MNSReceiptHandleError: the handle is stale (deleted already, or received again).
        """
        from mns.mns_exception import MNSServerException

        _check_handle(queue_name, receipt_handle)
        queue = self._queue(queue_name)

        def delete(ambiguous: bool) -> None:
            try:
                queue.delete_message(receipt_handle)
            except MNSServerException as exc:
                if ambiguous and exc.type == "MessageNotExist":
                    # An earlier attempt failed on the network after it may have been applied.
                    log.warning(
                        "MNS queue %s: message already gone after a retried delete; treating it as deleted",
                        queue_name,
                    )
                    return
                raise

        self._call("DeleteMessage", queue_name, delete)
        log.info("Deleted a message from MNS queue %s", queue_name)

    def delete_messages(self, queue_name: str, receipt_handles: Iterable[str]) -> dict[str, str]:
        """Delete messages in batches of 16; return ``{receipt handle: error code}`` for the handles
        that could not be deleted (``{}`` when all were)."""
        from mns.mns_exception import MNSServerException

        handles = list(receipt_handles)
        for handle in handles:
            _check_handle(queue_name, handle)
        queue = self._queue(queue_name)
        failed: dict[str, str] = {}
        for start in range(0, len(handles), MNS_MAX_BATCH_SIZE):
            chunk = handles[start : start + MNS_MAX_BATCH_SIZE]

            def delete(ambiguous: bool, chunk: list[str] = chunk) -> dict[str, str]:
                try:
                    queue.batch_delete_message(chunk)
                    return {}
                except MNSServerException as exc:
                    if not exc.sub_errors:
                        raise
                    errors = {e["ReceiptHandle"]: e["ErrorCode"] for e in exc.sub_errors}
                    if ambiguous:
                        errors = {h: c for h, c in errors.items() if c != "MessageNotExist"}
                    return errors

            failed.update(self._call("BatchDeleteMessage", queue_name, delete))
        log.info(
            "Deleted %d of %d message(s) from MNS queue %s",
            len(handles) - len(failed),
            len(handles),
            queue_name,
        )
        return failed

    def change_message_visibility(
        self, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> tuple[str, int]:
        """Make a received message invisible for ``visibility_timeout`` seconds (1..43200) from now.

        :return: the NEW receipt handle (the old one stops working) and the next visible time in
            epoch milliseconds.
        """
        _check_handle(queue_name, receipt_handle)
        _check_range(
            queue_name,
            "visibility_timeout",
            visibility_timeout,
            MNS_MIN_VISIBILITY_TIMEOUT,
            MNS_MAX_VISIBILITY_TIMEOUT,
        )
        queue = self._queue(queue_name)
        changed = self._call(
            "ChangeMessageVisibility",
            queue_name,
            lambda _: queue.change_message_visibility(receipt_handle, visibility_timeout),
        )
        return cast(str, changed.receipt_handle), int(changed.next_visible_time)

    # --- queues ------------------------------------------------------------------------
    def create_queue(
        self,
        queue_name: str,
        *,
        visibility_timeout: int | None = None,
        polling_wait_seconds: int | None = None,
        delay_seconds: int | None = None,
        maximum_message_size: int | None = None,
        message_retention_period: int | None = None,
    ) -> None:
        """Create a queue. Idempotent: an existing queue whose attributes match those given is fine;
        one whose attributes differ raises :class:`MNSError` naming the differences."""
        from mns.mns_exception import MNSServerException
        from mns.queue import QueueMeta

        requested = {
            "visibility_timeout": visibility_timeout,
            "polling_wait_seconds": polling_wait_seconds,
            "delay_seconds": delay_seconds,
            "maximum_message_size": maximum_message_size,
            "message_retention_period": message_retention_period,
        }
        _check_queue_attributes(queue_name, requested)
        meta = QueueMeta(
            vis_timeout=visibility_timeout,
            max_msg_size=maximum_message_size,
            msg_ttl=message_retention_period,
            delay_sec=delay_seconds,
            polling_wait_sec=polling_wait_seconds,
        )
        queue = self._queue(queue_name)

        def create(_: bool) -> bool:
            try:
                queue.create(meta)
                return True
            except MNSServerException as exc:
                if exc.type == "QueueAlreadyExist":
                    return False
                raise

        if self._call("CreateQueue", queue_name, create):
            log.info("MNS queue %s is ready (created, or it existed with the same attributes)", queue_name)
            return
        current = self.get_queue_attributes(queue_name)
        differences = {
            k: (v, current.get(k)) for k, v in requested.items() if v is not None and current.get(k) != v
        }
        if differences:
            raise MNSError(
                f"MNS queue {queue_name!r} already exists with other attributes: "
                + ", ".join(f"{k} is {have} (wanted {want})" for k, (want, have) in differences.items())
                + f" (connection {self.mns_conn_id!r})",
                conn_id=self.mns_conn_id,
                resource=queue_name,
                code="QueueAlreadyExist",
                status=409,
            )
        log.info("MNS queue %s already exists with the requested attributes", queue_name)

    def delete_queue(self, queue_name: str) -> None:
        """Delete a queue and its messages (a missing queue is fine)."""
        from mns.mns_exception import MNSServerException

        queue = self._queue(queue_name)

        def delete(_: bool) -> None:
            try:
                queue.delete()
            except MNSServerException as exc:
                if exc.type != "QueueNotExist":
                    raise

        self._call("DeleteQueue", queue_name, delete)
        log.info("Deleted MNS queue %s", queue_name)

    def get_queue_attributes(self, queue_name: str) -> dict[str, Any]:
        """The queue's attributes with snake_case keys (``visibility_timeout``,
        ``active_messages``, ``create_time``...)."""
        from mns.mns_request import GetQueueAttributesRequest, GetQueueAttributesResponse

        _check_queue_name(queue_name)
        client = self.get_conn().get_client()

        def get(_: bool) -> dict[str, Any]:
            # Queue.get_attributes() copies the message counters through properties the SDK marks
            # deprecated, warning on every call; silencing that would touch the process-wide
            # warning filters from many threads. The client call underneath it does not warn.
            resp = GetQueueAttributesResponse()
            client.get_queue_attributes(GetQueueAttributesRequest(queue_name), resp)
            return {
                "queue_name": resp.queue_name,
                "visibility_timeout": int(resp.visibility_timeout),
                "maximum_message_size": int(resp.maximum_message_size),
                "message_retention_period": int(resp.message_retention_period),
                "delay_seconds": int(resp.delay_seconds),
                "polling_wait_seconds": int(resp.polling_wait_seconds),
                "logging_enabled": bool(getattr(resp, "logging_enabled", False)),
                "active_messages": int(resp.active_messages),
                "inactive_messages": int(resp.inactive_messages),
                "delay_messages": int(resp.delay_messages),
                "create_time": int(resp.create_time),
                "last_modify_time": int(resp.last_modify_time),
            }

        return self._call("GetQueueAttributes", queue_name, get)

    def test_connection(self) -> tuple[bool, str]:
        """List at most one queue with the connection's endpoint and credentials."""
        try:
            account = self.get_conn()
            urls, _ = self._call("ListQueue", None, lambda _: account.list_queue("", 1))
        except Exception as exc:
            return False, str(exc)
        who = self._credentials_provider().source.describe()
        return True, f"Connected to MNS at {self.settings.endpoint} as {who} ({len(urls)} queue(s) listed)"

    # --- bodies ------------------------------------------------------------------------
    def _prepare_body(self, queue_name: str, body: str, index: int | None = None) -> str:
        which = "body" if index is None else f"body #{index}"
        if not isinstance(body, str):
            raise FnFConfigurationError(
                f"MNS message {which} for queue {queue_name!r} must be str, got {type(body).__name__} "
                "(serialize it, e.g. with json.dumps)",
                resource=queue_name,
            )
        if body == "":
            raise FnFConfigurationError(
                f"MNS message {which} for queue {queue_name!r} is empty: MNS does not accept empty bodies",
                resource=queue_name,
            )
        wire = (
            base64.b64encode(body.encode("utf-8")).decode("ascii") if self.body_encoding == "base64" else body
        )
        size = len(wire.encode("utf-8"))
        if size > MNS_MAX_MESSAGE_SIZE:
            raise FnFConfigurationError(
                f"MNS message {which} for queue {queue_name!r} is {size} bytes"
                + (" after base64 encoding" if self.body_encoding == "base64" else "")
                + f", over the {MNS_MAX_MESSAGE_SIZE}-byte limit",
                resource=queue_name,
            )
        return wire

    def _decode_body(self, raw: str) -> tuple[str, str | None]:
        """(body, decode_error) for a received raw body, according to ``body_encoding``."""
        if self.body_encoding == "raw":
            return raw, None
        try:
            decoded = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            if self.body_encoding == "base64":
                return raw, f"body is not base64 of UTF-8 text ({exc}); kept as raw text"
            return raw, None
        if self.body_encoding == "auto" and (not raw or not _looks_like_text(decoded)):
            return raw, None
        return decoded, None

    def _to_message(self, queue_name: str, msg: Any, *, received: bool) -> MNSMessage:
        raw = msg.message_body
        if isinstance(raw, bytes):  # only if someone turned the SDK's encoding back on
            raw = raw.decode("utf-8", errors="replace")
        body, error = self._decode_body(raw)
        if error:
            log.warning("MNS queue %s, message %s: %s", queue_name, msg.message_id, error)
        return MNSMessage(
            message_id=msg.message_id,
            receipt_handle=(msg.receipt_handle or None) if received else None,
            body=body,
            dequeue_count=int(msg.dequeue_count),
            enqueue_time=int(msg.enqueue_time),
            first_dequeue_time=_positive(msg.first_dequeue_time),
            next_visible_time=_positive(msg.next_visible_time) if received else None,
            priority=int(msg.priority),
            body_md5=msg.message_body_md5 or None,
            decode_error=error,
        )


# --- one function decides what is retryable --------------------------------------------
def is_retryable_mns_error(exc: BaseException) -> bool:
    """True for errors worth another attempt: the network (no answer, connection reset) and
    server-side failures (InternalError and friends). Everything else is final."""
    from mns.mns_exception import MNSClientNetworkException, MNSServerException

    if isinstance(exc, MNSClientNetworkException):
        return exc.type == "NetWorkException"
    if isinstance(exc, MNSServerException):
        return exc.type in _RETRYABLE_SERVER_CODES
    return False


# --- validation ---------------------------------------------------------------------------
def _check_queue_name(queue_name: str) -> None:
    if not isinstance(queue_name, str) or not queue_name.strip():
        raise FnFConfigurationError(f"MNS queue name must be a non-empty string, got {queue_name!r}")
    if any(c in queue_name for c in "/?#& \t\r\n"):
        raise FnFConfigurationError(
            f"MNS queue name {queue_name!r} is invalid: use letters, digits and hyphens", resource=queue_name
        )


def _check_range(queue_name: str | None, name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FnFConfigurationError(
            f"{name}={value!r} for MNS queue {queue_name!r} is out of range: it must be an integer "
            f"from {low} to {high}",
            resource=queue_name,
        )


def _check_send_options(queue_name: str, priority: int | None, delay_seconds: int | None) -> None:
    if priority is not None:
        _check_range(queue_name, "priority", priority, MNS_MIN_PRIORITY, MNS_MAX_PRIORITY)
    if delay_seconds is not None:
        _check_range(queue_name, "delay_seconds", delay_seconds, 0, MNS_MAX_DELAY_SECONDS)


def _check_queue_attributes(queue_name: str, attributes: Mapping[str, int | None]) -> None:
    bounds = {
        "visibility_timeout": (MNS_MIN_VISIBILITY_TIMEOUT, MNS_MAX_VISIBILITY_TIMEOUT),
        "polling_wait_seconds": (0, MNS_MAX_WAIT_SECONDS),
        "delay_seconds": (0, MNS_MAX_DELAY_SECONDS),
        "maximum_message_size": (MNS_MIN_MESSAGE_SIZE_LIMIT, MNS_MAX_MESSAGE_SIZE),
        "message_retention_period": (MNS_MIN_RETENTION_SECONDS, MNS_MAX_RETENTION_SECONDS),
    }
    for name, value in attributes.items():
        if value is not None:
            _check_range(queue_name, name, value, *bounds[name])


def _check_handle(queue_name: str, receipt_handle: str) -> None:
    if not isinstance(receipt_handle, str) or not receipt_handle.strip():
        raise FnFConfigurationError(
            f"receipt handle for MNS queue {queue_name!r} must be a non-empty string, got {receipt_handle!r}",
            resource=queue_name,
        )


def _chunks_by_size(bodies: list[str]) -> Iterable[tuple[int, list[str]]]:
    """Split bodies into batches of at most 16 messages and at most 64 KiB in total."""
    start = 0
    chunk: list[str] = []
    size = 0
    for i, body in enumerate(bodies):
        n = len(body.encode("utf-8"))
        if chunk and (len(chunk) == MNS_MAX_BATCH_SIZE or size + n > MNS_MAX_MESSAGE_SIZE):
            yield start, chunk
            start, chunk, size = i, [], 0
        chunk.append(body)
        size += n
    if chunk:
        yield start, chunk


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _looks_like_text(text: str) -> bool:
    return all(c.isprintable() or c in "\t\r\n" for c in text)

"""Unit tests of MNSHook's own logic: settings, validation, body decoding, retries, error mapping.

Everything that talks to the service is in tests/integration/hooks/.
"""

from __future__ import annotations

import base64
import json
import threading
from types import SimpleNamespace

import pytest
from mns.mns_exception import (
    MNSClientNetworkException,
    MNSClientParameterException,
    MNSServerException,
)

from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    MNSAuthenticationError,
    MNSEndpointUnreachableError,
    MNSError,
    MNSQueueNotFoundError,
    MNSReceiptHandleError,
)
from airflow_provider_fnf.hooks import mns as mns_module
from airflow_provider_fnf.hooks.mns import (
    MNSHook,
    MNSMessage,
    _chunks_by_size,
    is_retryable_mns_error,
)
from airflow_provider_fnf.limits import MNS_MAX_MESSAGE_SIZE, MNS_MAX_WAIT_SECONDS

CONN_ID = "mns_unit"


def set_conn(monkeypatch, conn_id: str = CONN_ID, **fields) -> None:
    conn = {"conn_type": "mns", **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture
def hook(monkeypatch) -> MNSHook:
    set_conn(
        monkeypatch,
        login="unit-access-key-id",
        password="unit-access-key-secret",
        extra={"endpoint": "http://127.0.0.1:1"},
    )
    return MNSHook(CONN_ID)


def sdk_message(body: str, **overrides) -> SimpleNamespace:
    fields = {
        "message_id": "MSG1",
        "receipt_handle": "handle-1",
        "message_body": body,
        "dequeue_count": 1,
        "enqueue_time": 1_700_000_000_000,
        "first_dequeue_time": 1_700_000_000_500,
        "next_visible_time": 1_700_000_030_500,
        "priority": 8,
        "message_body_md5": "ABC",
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


# --- the message ------------------------------------------------------------------------
def test_message_round_trips_through_json():
    message = MNSMessage(
        message_id="M",
        receipt_handle="H",
        body='{"task_token": "t"}',
        dequeue_count=2,
        enqueue_time=1,
        first_dequeue_time=2,
        next_visible_time=3,
        priority=1,
        body_md5="X",
        decode_error=None,
    )
    assert MNSMessage.from_dict(json.loads(json.dumps(message.to_dict()))) == message


def test_message_from_dict_rejects_a_dict_without_id_or_body():
    with pytest.raises(ValueError, match="message_id"):
        MNSMessage.from_dict({"body": "x"})


# --- construction and settings -------------------------------------------------------------
def test_constructor_touches_nothing(monkeypatch):
    # No connection defined: building the hook must still work (nothing read until first use).
    hook = MNSHook("mns_not_defined_anywhere")
    assert hook.mns_conn_id == "mns_not_defined_anywhere"
    assert hook.body_encoding == "raw"


def test_constructor_rejects_unknown_body_encoding():
    with pytest.raises(FnFConfigurationError, match="body_encoding='hex'"):
        MNSHook(CONN_ID, body_encoding="hex")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "endpoint"),
    [
        ({"endpoint": "http://127.0.0.1:9911"}, "http://127.0.0.1:9911"),
        ({"endpoint": "https://vpc.example.internal/"}, "https://vpc.example.internal"),
        (
            {"account_id": "1234567890", "region": "cn-hangzhou"},
            "https://1234567890.mns.cn-hangzhou.aliyuncs.com",
        ),
        (
            {"endpoint": "http://127.0.0.1:9911", "account_id": "1", "region": "r"},
            "http://127.0.0.1:9911",
        ),
    ],
)
def test_endpoint_whole_or_built_from_account_and_region(monkeypatch, extra, endpoint):
    set_conn(monkeypatch, login="id", password="secret-value", extra=extra)
    assert MNSHook(CONN_ID).endpoint == endpoint


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "no MNS endpoint"),
        ({"region": "cn-hangzhou"}, "only region is set"),
        ({"endpoint": "127.0.0.1:9911"}, "must be a whole URL"),
        ({"endpoint": "http://host/queues"}, "must not contain a path"),
    ],
)
def test_bad_endpoint_names_the_connection(monkeypatch, extra, message):
    set_conn(monkeypatch, login="id", password="secret-value", extra=extra)
    with pytest.raises(FnFConfigurationError, match=message) as info:
        _ = MNSHook(CONN_ID).endpoint
    assert CONN_ID in str(info.value)
    assert info.value.conn_id == CONN_ID


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"login": "id"}, "no AccessKey Secret"),
        ({"password": "secret-value"}, "no AccessKey ID"),
        ({"extra": {"endpoint": "http://h:1", "security_token": "sts-token-value"}}, "STS security_token"),
    ],
)
def test_half_credentials_are_rejected(monkeypatch, fields, message):
    fields.setdefault("extra", {"endpoint": "http://h:1"})
    set_conn(monkeypatch, **fields)
    with pytest.raises(FnFConfigurationError, match=message):
        _ = MNSHook(CONN_ID).settings


def test_no_credentials_means_default_chain(monkeypatch):
    set_conn(monkeypatch, extra={"endpoint": "http://h:1"})
    assert MNSHook(CONN_ID).settings.credentials is None


def test_secret_and_sts_token_are_masked(monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    set_conn(
        monkeypatch,
        login="id",
        password="unit-secret-to-mask",
        extra={"endpoint": "http://h:1", "security_token": "unit-sts-token-to-mask"},
    )
    settings = MNSHook(CONN_ID).settings
    assert settings.credentials is not None
    assert "unit-secret-to-mask" not in repr(settings)
    line = redact("secret unit-secret-to-mask token unit-sts-token-to-mask")
    assert "unit-secret-to-mask" not in line
    assert "unit-sts-token-to-mask" not in line


def test_default_chain_turns_a_none_token_into_empty(monkeypatch):
    from alibabacloud_credentials.utils import auth_util

    from airflow_provider_fnf import credentials

    monkeypatch.setattr(credentials, "_default_provider", None)
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_access_key_id", "chain-id")
    monkeypatch.setattr(auth_util, "environment_access_key_secret", "chain-secret-value")
    monkeypatch.setattr(auth_util, "environment_security_token", None)
    source = credentials.DefaultChainCredentialSource(CONN_ID)
    creds = mns_module._MNSCredentialsProvider(CONN_ID, source).get_credentials()
    assert creds.get_access_key_id() == "chain-id"
    assert creds.get_access_key_secret() == "chain-secret-value"
    assert creds.get_security_token() == ""


# --- one SDK client per thread -------------------------------------------------------------
def test_one_account_per_thread_with_socket_timeout_above_the_longest_poll(hook):
    accounts = []

    def grab():
        accounts.append(hook.get_conn())
        accounts.append(hook.get_conn())

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accounts) == 6
    assert accounts[0] is accounts[1]
    assert len({id(a) for a in accounts}) == 3
    http = accounts[0].get_client().http
    assert http.connection_timeout > MNS_MAX_WAIT_SECONDS
    assert http.conn.connection_timeout > MNS_MAX_WAIT_SECONDS


def test_https_client_gets_a_socket_timeout_too(monkeypatch):
    set_conn(monkeypatch, login="id", password="secret-value", extra={"endpoint": "https://h.example:443"})
    conn = MNSHook(CONN_ID).get_conn().get_client().http.conn
    assert conn.timeout is not None and conn.timeout > MNS_MAX_WAIT_SECONDS


# --- argument validation (before any request) ----------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.receive_messages("q1", 0), "max_messages=0"),
        (lambda h: h.receive_messages("q1", 17), "max_messages=17"),
        (lambda h: h.receive_messages("q1", 1, wait_seconds=31), "wait_seconds=31"),
        (lambda h: h.receive_messages("q1", 1, wait_seconds=-1), "wait_seconds=-1"),
        (lambda h: h.peek_messages("q1", 17), "max_messages=17"),
        (lambda h: h.send_message("q1", "b", priority=0), "priority=0"),
        (lambda h: h.send_message("q1", "b", priority=17), "priority=17"),
        (lambda h: h.send_message("q1", "b", delay_seconds=-1), "delay_seconds=-1"),
        (lambda h: h.send_message("q1", "b", delay_seconds=604_801), "delay_seconds=604801"),
        (lambda h: h.send_message("q1", ""), "empty"),
        (lambda h: h.send_message("q1", b"bytes"), "must be str"),  # type: ignore[arg-type]
        (lambda h: h.send_message("q1", "x" * (MNS_MAX_MESSAGE_SIZE + 1)), "over the 65536-byte limit"),
        (lambda h: h.send_messages("q1", ["ok", ""]), "body #1"),
        (lambda h: h.change_message_visibility("q1", "h", 0), "visibility_timeout=0"),
        (lambda h: h.change_message_visibility("q1", "h", 43_201), "visibility_timeout=43201"),
        (lambda h: h.delete_message("q1", ""), "receipt handle"),
        (lambda h: h.create_queue("q1", polling_wait_seconds=31), "polling_wait_seconds=31"),
        (lambda h: h.create_queue("q1", maximum_message_size=100), "maximum_message_size=100"),
        (lambda h: h.create_queue("q1", message_retention_period=10), "message_retention_period=10"),
    ],
)
def test_out_of_range_arguments_fail_before_any_request_and_name_the_queue(hook, call, message):
    with pytest.raises(FnFConfigurationError, match=message) as info:
        call(hook)
    assert "'q1'" in str(info.value)


def test_multibyte_body_counts_bytes_not_characters(hook):
    body = "é" * (MNS_MAX_MESSAGE_SIZE // 2 + 1)  # fewer characters than the limit, more bytes
    with pytest.raises(FnFConfigurationError, match="bytes"):
        hook.send_message("q1", body)


def test_batches_are_at_most_16_messages_and_64_kib():
    small = ["x"] * 40
    assert [len(c) for _, c in _chunks_by_size(small)] == [16, 16, 8]
    assert [s for s, _ in _chunks_by_size(small)] == [0, 16, 32]
    big = ["y" * 30_000] * 5
    chunks = list(_chunks_by_size(big))
    assert [len(c) for _, c in chunks] == [2, 2, 1]
    assert all(sum(len(b) for b in c) <= MNS_MAX_MESSAGE_SIZE for _, c in chunks)


# --- body decoding ---------------------------------------------------------------------------
def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("encoding", "raw", "body", "has_error"),
    [
        ("raw", '{"task_token": "abc"}', '{"task_token": "abc"}', False),
        ("raw", b64("hello"), b64("hello"), False),
        ("base64", b64('{"k": "v"}'), '{"k": "v"}', False),
        ("base64", '{"not": "base64"}', '{"not": "base64"}', True),
        ("base64", b64("\xff\xfe").replace("w", "!"), b64("\xff\xfe").replace("w", "!"), True),
        ("auto", b64('{"k": "v"}'), '{"k": "v"}', False),
        ("auto", '{"k": "v"}', '{"k": "v"}', False),
        ("auto", "test", "test", False),
    ],
)
def test_body_decoding_never_drops_the_receipt_handle(hook, encoding, raw, body, has_error):
    hook.body_encoding = encoding
    message = hook._to_message("q1", sdk_message(raw), received=True)
    assert message.body == body
    assert (message.decode_error is not None) == has_error
    assert message.receipt_handle == "handle-1"
    assert message.message_id == "MSG1"


def test_base64_mode_encodes_what_it_sends(monkeypatch):
    set_conn(monkeypatch, login="id", password="secret-value", extra={"endpoint": "http://h:1"})
    hook = MNSHook(CONN_ID, body_encoding="base64")
    assert hook._prepare_body("q1", "héllo") == b64("héllo")


def test_peeked_message_has_no_handle_and_unset_times_are_none(hook):
    message = hook._to_message("q1", sdk_message("b", first_dequeue_time=0), received=False)
    assert message.receipt_handle is None
    assert message.next_visible_time is None
    assert message.first_dequeue_time is None


# --- retries and error mapping ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (MNSClientNetworkException("NetWorkException", "connection refused"), True),
        (MNSServerException("InternalError", "boom", "req", "host"), True),
        (MNSServerException("QueueNotExist", "no", "req", "host"), False),
        (MNSServerException("SignatureDoesNotMatch", "no", "req", "host"), False),
        (MNSServerException("MessageNotExist", "no", "req", "host"), False),
        (MNSClientNetworkException("RespDataDamaged", "<html>"), False),
        (MNSClientParameterException("QueueNameInvalid", "bad"), False),
        (ValueError("x"), False),
    ],
)
def test_one_function_decides_what_is_retryable(exc, retryable):
    assert is_retryable_mns_error(exc) is retryable


def test_network_errors_are_retried_a_bounded_number_of_times(hook):
    hook.retry_base_delay = 0
    calls = []

    def flaky(ambiguous):
        calls.append(ambiguous)
        raise MNSClientNetworkException("NetWorkException", "[Errno 111] Connection refused")

    with pytest.raises(MNSEndpointUnreachableError) as info:
        hook._call("SendMessage", "q1", flaky)
    assert calls == [False, True, True]
    message = str(info.value)
    assert "3 attempt(s)" in message and CONN_ID in message and "'q1'" in message
    assert "http://127.0.0.1:1" in message
    assert isinstance(info.value.__cause__, MNSClientNetworkException)


def test_a_retry_that_succeeds_returns_the_result(hook):
    hook.retry_base_delay = 0
    attempts = []

    def flaky(_):
        attempts.append(1)
        if len(attempts) < 2:
            raise MNSServerException("InternalError", "try again", "req", "host")
        return "ok"

    assert hook._call("SendMessage", "q1", flaky) == "ok"
    assert len(attempts) == 2


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        ("QueueNotExist", MNSQueueNotFoundError),
        ("SignatureDoesNotMatch", MNSAuthenticationError),
        ("InvalidAccessKeyId", MNSAuthenticationError),
        ("AccessDenied", MNSAuthenticationError),
        ("MessageNotExist", MNSReceiptHandleError),
        ("ReceiptHandleError", MNSReceiptHandleError),
        ("InvalidArgument", MNSError),
    ],
)
def test_server_errors_map_to_our_exceptions(hook, code, error_class):
    def fail(_):
        raise MNSServerException(code, "service said no", "REQ-1", "host")

    with pytest.raises(error_class) as info:
        hook._call("DeleteMessage", "q1", fail)
    assert type(info.value) is error_class
    assert info.value.code == code
    assert info.value.conn_id == CONN_ID
    assert info.value.resource == "q1"
    assert isinstance(info.value.__cause__, MNSServerException)


def test_unreadable_response_is_described_not_repeated(hook):
    token = "djEjZmxvdyNleGVjIzMjc2lnbmF0dXJl"

    def damaged(_):
        raise MNSClientNetworkException("RespDataDamaged", f"<Message><MessageBody>{token}</MessageBody>")

    with pytest.raises(MNSError, match="could not read") as info:
        hook._call("ReceiveMessage", "q1", damaged)
    assert token not in str(info.value)
    assert not isinstance(info.value, MNSEndpointUnreachableError)


def test_connection_can_be_loaded_from_an_event_loop(hook):
    import asyncio

    asyncio.run(hook.aload_connection())
    assert hook._settings is not None
    assert hook.endpoint == "http://127.0.0.1:1"

"""Requests are authenticated like the service: MNS HMAC-SHA1 signatures, STS tokens, Date, Content-MD5."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, Queue
from mns_emulator_helpers import make_queue, raw_request

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def error_type(call, *args) -> str:
    with pytest.raises(MNSServerException) as info:
        call(*args)
    return info.value.type


def test_wrong_secret_is_rejected_with_403(emulator: Emulator, queue: Queue):
    queue.send_message(Message("secret stuff"))
    intruder = Account(emulator.mns_endpoint, DEFAULT_ACCESS_KEY_ID, "wrong-secret").get_queue("jobs")
    assert error_type(intruder.receive_message, 0) == "SignatureDoesNotMatch"
    assert error_type(intruder.send_message, Message("x")) == "SignatureDoesNotMatch"
    response = raw_request(emulator.mns_endpoint, "GET", "/queues/jobs", secret="wrong-secret")
    assert (response.status, response.xml_text("Code")) == (403, "SignatureDoesNotMatch")
    assert queue.get_attributes().active_messages == 1


def test_unknown_access_key_id_is_rejected(emulator: Emulator, queue: Queue):
    stranger = Account(emulator.mns_endpoint, "someone-else", DEFAULT_ACCESS_KEY_SECRET).get_queue("jobs")
    assert error_type(stranger.peek_message) == "InvalidAccessKeyId"
    response = raw_request(emulator.mns_endpoint, "GET", "/queues/jobs", access_key_id="someone-else")
    assert response.status == 403


def test_a_request_signed_for_another_target_is_rejected(emulator: Emulator, account: Account, queue: Queue):
    make_queue(account, "other")
    response = raw_request(emulator.mns_endpoint, "DELETE", "/queues/other", signed_target="/queues/jobs")
    assert (response.status, response.xml_text("Code")) == (403, "SignatureDoesNotMatch")
    assert sorted(url.rsplit("/", 1)[1] for url in account.list_queue()[0]) == ["jobs", "other"]


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 400, "MissingAuthorizationHeader"),
        ("Basic abc", 400, "InvalidAuthorizationHeader"),
        ("MNS no-colon", 400, "InvalidAuthorizationHeader"),
        (f"MNS {DEFAULT_ACCESS_KEY_ID}:bm90IGEgc2lnbmF0dXJl", 403, "SignatureDoesNotMatch"),
    ],
)
def test_bad_authorization_headers(
    emulator: Emulator, queue: Queue, authorization: str | None, status: int, code: str
):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = raw_request(emulator.mns_endpoint, "GET", "/queues/jobs", sign=False, headers=headers)
    assert (response.status, response.xml_text("Code")) == (status, code)


def test_stale_or_missing_date(emulator: Emulator, queue: Queue):
    old = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 3600))
    response = raw_request(emulator.mns_endpoint, "GET", "/queues/jobs", date=old)
    assert (response.status, response.xml_text("Code")) == (408, "TimeExpired")
    response = raw_request(emulator.mns_endpoint, "GET", "/queues/jobs", date="yesterday-ish")
    assert (response.status, response.xml_text("Code")) == (400, "InvalidDateHeader")


def test_wrong_content_md5(emulator: Emulator, queue: Queue):
    body = b'<Message xmlns="http://mns.aliyuncs.com/doc/v1/"><MessageBody>x</MessageBody></Message>'
    response = raw_request(
        emulator.mns_endpoint,
        "POST",
        "/queues/jobs/messages",
        body,
        headers={"content-md5": "bm90LXRoZS1tZDU="},
    )
    assert (response.status, response.xml_text("Code")) == (400, "InvalidDegist")
    assert error_type(queue.peek_message) == "MessageNotExist"


@pytest.fixture
def sts_emulator() -> Iterator[Emulator]:
    with Emulator(
        access_keys={"STS.temporary-id": "temporary-secret", "other-id": "other-secret"},
        sts_tokens={"sts-token-1": "STS.temporary-id"},
    ) as running:
        yield running


def test_sts_security_token(sts_emulator: Emulator):
    endpoint = sts_emulator.mns_endpoint
    with_token = Account(endpoint, "STS.temporary-id", "temporary-secret", security_token="sts-token-1")
    queue = make_queue(with_token, "sts")
    queue.send_message(Message("via sts"))
    assert queue.receive_message(0).message_body == "via sts"

    wrong_token = Account(
        endpoint, "STS.temporary-id", "temporary-secret", security_token="forged"
    ).get_queue("sts")
    assert error_type(wrong_token.peek_message) == "AccessDenied"
    borrowed = Account(endpoint, "other-id", "other-secret", security_token="sts-token-1").get_queue("sts")
    assert error_type(borrowed.peek_message) == "AccessDenied"
    default_key = Account(endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET).get_queue("sts")
    assert (
        error_type(default_key.peek_message) == "InvalidAccessKeyId"
    )  # only the configured keys are accepted

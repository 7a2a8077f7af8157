"""Signature V1, task tokens and throttling of the Serverless Workflow emulator (pure logic)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fnf_emulator.core import Request, ServiceError
from fnf_emulator.fnf import api, tokens
from fnf_emulator.fnf.throttle import ActionThrottle
from fnf_emulator.identities import Identities

CAPTURES = Path(__file__).parents[2] / "data" / "fnf20190315-2.0.1-requests.json"
"""What alibabacloud-fnf20190315 2.0.1 sent to a recording server (fake credentials ``testid``)."""


def test_string_to_sign_matches_what_the_sdk_signed() -> None:
    for capture in json.loads(CAPTURES.read_text()):
        query = capture["path"].partition("?")[2]
        request = Request(
            capture["method"],
            "/",
            query,
            {k.lower(): v for k, v in capture["headers"].items()},
            capture["body"].encode(),
        )
        params = api.params_of(request)
        assert params == {**capture["query"], **capture["form"]}
        assert api.string_to_sign(capture["method"], params) == capture["sts"]


def _signed(method: str, params: dict[str, str], secret: str) -> Request:
    from urllib.parse import urlencode

    params = {**params, "Signature": api.sign(method, params, secret)}
    return Request(method, "/", urlencode(params), {})


def _common(**extra: str) -> dict[str, str]:
    return {
        "Action": "DescribeFlow",
        "Name": "f",
        "AccessKeyId": "id",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": "n",
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Format": "json",
        "Version": "2019-03-15",
        **extra,
    }


def test_good_signature_passes() -> None:
    request = _signed("GET", _common(), "secret")
    assert api.verify_signature(request, api.params_of(request), Identities({"id": "secret"}), time.time()) == "id"


@pytest.mark.parametrize(
    ("secret", "keys", "sts", "extra", "status", "code"),
    [
        ("wrong", {"id": "secret"}, None, {}, 403, "SignatureNotMatch"),
        ("secret", {"other": "secret"}, None, {}, 403, "InvalidAccessKeyID"),
        ("secret", {"id": "secret"}, {"good": "id"}, {"SecurityToken": "bad"}, 403, "InvalidSecurityToken"),
        (
            "secret",
            {"id": "secret"},
            None,
            {"Timestamp": "2001-01-01T00:00:00Z"},
            403,
            "RequestTimeTooSkewed",
        ),
    ],
)
def test_bad_credentials_answer_403(
    secret: str,
    keys: dict[str, str],
    sts: dict[str, str] | None,
    extra: dict[str, str],
    status: int,
    code: str,
) -> None:
    request = _signed("GET", _common(**extra), secret)
    with pytest.raises(ServiceError) as info:
        api.verify_signature(request, api.params_of(request), Identities(keys, sts), time.time())
    assert (info.value.status, info.value.code) == (status, code)


def test_tokens_are_shaped_like_the_real_ones_and_cannot_be_forged() -> None:
    secret = b"k" * 32
    token = tokens.make_token(secret, "flow", "exec-1", 3, "private")
    import base64

    assert base64.b64decode(token).decode().startswith("v1#flow#exec-1#3#")
    parts = tokens.parse_token(token)
    assert (parts.flow_name, parts.execution_name, parts.event_id) == ("flow", "exec-1", 3)
    assert tokens.verify(secret, parts, "private")
    assert not tokens.verify(secret, parts, "another-execution")
    assert not tokens.verify(b"x" * 32, parts, "private")
    forged = base64.b64encode(b"v1#flow#exec-1#4#" + parts.signature.encode()).decode()
    assert not tokens.verify(secret, tokens.parse_token(forged), "private")
    for bad in (
        "not base64!",
        base64.b64encode(b"v2#a#b#1#s").decode(),
        base64.b64encode(b"v1#a#b#x#s").decode(),
    ):
        with pytest.raises(tokens.TokenError):
            tokens.parse_token(bad)


def test_throttle_uses_published_quotas() -> None:
    now = [0.0]
    throttle = ActionThrottle(clock=lambda: now[0])
    assert sum(throttle.allow("ReportTaskSucceeded") for _ in range(20)) == 10
    assert sum(throttle.allow("DescribeExecution") for _ in range(60)) == 50
    now[0] = 1.0  # two tokens per second for ReportTask*
    assert sum(throttle.allow("ReportTaskSucceeded") for _ in range(5)) == 2


def test_signature_error_never_echoes_tokens() -> None:
    request = _signed("POST", _common(Action="ReportTaskSucceeded", TaskToken="secret-token"), "wrong")
    with pytest.raises(ServiceError) as info:
        api.verify_signature(request, api.params_of(request), Identities({"id": "secret"}), time.time())
    assert info.value.code == "SignatureNotMatch"
    assert "secret-token" not in info.value.message and "TaskToken%3D%252A%252A%252A" in info.value.message

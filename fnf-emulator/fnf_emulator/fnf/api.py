"""The RPC wire format of Serverless Workflow (API 2019-03-15): parameters, signature V1, JSON.

Every call is ``GET|POST /?Action=...`` with the common parameters in the query and, for POST,
the action's parameters in an ``application/x-www-form-urlencoded`` body. The signature covers
all query and form parameters except ``Signature``:
``StringToSign = METHOD & pct("/") & pct(sorted "pct(k)=pct(v)" joined by "&")``,
``Signature = base64(HMAC-SHA1(secret + "&", StringToSign))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote

from fnf_emulator.core import Request, Response, ServiceError
from fnf_emulator.identities import Identities, IdentityRejected, Rejection

MAX_CLOCK_SKEW_SECONDS = 15 * 60
"""Timestamps further than this from the server clock answer RequestTimeTooSkewed (*unconfirmed* 15 min)."""
HOST_ID = "fnf.emulator.local"
_SECRET_PARAMS = frozenset({"TaskToken", "SecurityToken"})


def pct(text: str) -> str:
    return quote(text, safe="~")


def params_of(request: Request) -> dict[str, str]:
    """Query parameters merged with form parameters (form wins)."""
    params = dict(parse_qsl(request.query, keep_blank_values=True))
    ctype = request.headers.get("content-type", "")
    if request.body and (not ctype or "x-www-form-urlencoded" in ctype):
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError(400, "InvalidArgument", "The request body is not UTF-8.") from None
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()) if k != "Signature")
    return f"{method.upper()}&{pct('/')}&{pct(canonical)}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    digest = hmac.new((secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


_REJECTIONS = {
    Rejection.UNKNOWN_ACCESS_KEY: (403, "InvalidAccessKeyID", "The AccessKeyId is not found."),
    Rejection.SECURITY_TOKEN_INVALID: (
        403,
        "InvalidSecurityToken",
        "The security token is invalid or belongs to another key.",
    ),
    Rejection.SECURITY_TOKEN_MISSING: (400, "MissingSecurityToken", "SecurityToken is mandatory for this action."),
    Rejection.SECURITY_TOKEN_EXPIRED: (403, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."),
}
"""How the RPC APIs (Serverless Workflow, STS) answer refused credentials (the codes of Alibaba
Cloud's API gateway)."""


def verify_signature(
    request: Request, params: Mapping[str, str], identities: Identities, now: float, service: str = "fnf"
) -> str:
    """Check the signature V1; return the AccessKeyId or raise a 4xx :class:`ServiceError`."""
    for name in ("AccessKeyId", "Signature", "SignatureMethod", "Timestamp", "SignatureNonce"):
        if not params.get(name):
            raise ServiceError(400, "MissingRequiredParams", f"The parameter {name} is required.")
    if params["SignatureMethod"] != "HMAC-SHA1":
        raise ServiceError(
            400, "InvalidArgument", f"SignatureMethod {params['SignatureMethod']} is not supported."
        )
    key_id = params["AccessKeyId"]
    try:
        secret = identities.verify(key_id, params.get("SecurityToken") or None, now, service=service)
    except IdentityRejected as rejected:
        raise ServiceError(*_REJECTIONS[rejected.reason]) from None
    try:
        stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ServiceError(400, "InvalidArgument", "Timestamp must look like 2019-01-01T01:01:01Z.") from None
    if abs(stamp.timestamp() - now) > MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(
            403, "RequestTimeTooSkewed", "The request Timestamp is too far from the server time."
        )
    expected = sign(request.method, params, secret)
    if not hmac.compare_digest(expected, params["Signature"]):
        # The server's StringToSign helps debugging; task and security tokens are masked in it
        # because clients may log this message.
        shown = {k: ("***" if k in _SECRET_PARAMS else v) for k, v in params.items()}
        raise ServiceError(
            403,
            "SignatureNotMatch",
            "The request signature does not match. Server StringToSign (tokens masked): "
            + string_to_sign(request.method, shown),
        )
    return key_id


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def json_response(status: int, body: dict[str, Any], request_id: str) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode()
    return Response(
        status,
        {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id},
        data,
    )


def error_response(error: ServiceError, request_id: str | None = None) -> Response:
    rid = request_id or new_request_id()
    response = json_response(
        error.status, {"Code": error.code, "Message": error.message, "RequestId": rid, "HostId": HOST_ID}, rid
    )
    response.error_code = error.code
    return response

"""MNS request authentication: the ``Authorization: MNS <AccessKeyId>:<Signature>`` scheme.

StringToSign = VERB, Content-MD5, Content-Type, Date (each followed by a newline), then every
``x-mns-*`` header lower-cased and sorted as ``name:value`` lines, then the request target as
sent. Signature = base64(HMAC-SHA1(AccessKeySecret, StringToSign)). An STS token travels unsigned
in the ``security-token`` header.

Temporary credentials past their expiration answer 403 ``SecurityTokenExpired`` (*unconfirmed*:
MNS's published error codes name none for an expired STS token; the code is the one of its
sibling service OSS), so a client can tell expiry from wrong credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from email.utils import parsedate_to_datetime

from fnf_emulator.core import Request, ServiceError
from fnf_emulator.identities import Identities, IdentityRejected, Rejection
from fnf_emulator.limits import MNS_MAX_CLOCK_SKEW_SECONDS


def string_to_sign(request: Request) -> str:
    headers = request.headers
    target = request.target or (f"{request.path}?{request.query}" if request.query else request.path)
    mns_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-mns-")
    )
    return (
        f"{request.method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{mns_headers}{target}"
    )


def sign(secret: str, string: str) -> str:
    digest = hmac.new(secret.encode(), string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def content_md5(body: bytes) -> str:
    """What the SDK sends as ``content-md5``: base64 of the hex MD5 digest."""
    return base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()


_REJECTIONS = {
    Rejection.UNKNOWN_ACCESS_KEY: (403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist."),
    Rejection.SECURITY_TOKEN_INVALID: (
        403,
        "AccessDenied",
        "The security token you provided is invalid or does not belong to the AccessKey Id.",
    ),
    Rejection.SECURITY_TOKEN_MISSING: (
        403,
        "AccessDenied",
        "The AccessKey Id is a temporary one: send its security token too (*unconfirmed* code).",
    ),
    Rejection.SECURITY_TOKEN_EXPIRED: (403, "SecurityTokenExpired", "The security token you provided has expired."),
}


def authenticate(request: Request, identities: Identities, now: float | None = None) -> str:
    """Check the request's date, body digest and signature; return the access key id."""
    headers = request.headers
    date = headers.get("date")
    if not date:
        raise ServiceError(400, "MissingDateHeader", "Date header is required.")
    try:
        sent = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError) as exc:
        raise ServiceError(400, "InvalidDateHeader", "The Date header format is invalid.") from exc
    if abs((time.time() if now is None else now) - sent) > MNS_MAX_CLOCK_SKEW_SECONDS:
        raise ServiceError(408, "TimeExpired", "The http request you sent is expired.")

    md5 = headers.get("content-md5")
    if md5 is not None and md5 != content_md5(request.body):
        raise ServiceError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")

    authorization = headers.get("authorization")
    if not authorization:
        raise ServiceError(400, "MissingAuthorizationHeader", "Authorization header is required.")
    scheme, _, credential = authorization.partition(" ")
    access_key_id, sep, signature = credential.strip().rpartition(":")
    if scheme != "MNS" or not sep or not access_key_id or not signature:
        raise ServiceError(400, "InvalidAuthorizationHeader", "The Authorization header format is invalid.")
    try:
        secret = identities.verify(access_key_id, headers.get("security-token") or None, now, service="mns")
    except IdentityRejected as rejected:
        raise ServiceError(*_REJECTIONS[rejected.reason]) from None
    expected = sign(secret, string_to_sign(request))
    if not hmac.compare_digest(expected, signature):
        raise ServiceError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return access_key_id

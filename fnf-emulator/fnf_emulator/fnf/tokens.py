"""Task tokens: ``base64("v1#<flow>#<execution>#<event id>#<signature>")``.

The signature is an HMAC-SHA256 (url-safe base64, truncated to 32 characters) over the flow
name, execution name, event id and the execution's private id, keyed by a secret the service
keeps (persisted with ``data_dir``). A token is therefore unguessable, survives a restart, and a
token of a deleted and re-created execution of the same name does not verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

PREFIX = "v1"


class TokenError(ValueError):
    """A token that is malformed or was not issued by this service."""


@dataclass(frozen=True)
class TaskTokenParts:
    flow_name: str
    execution_name: str
    event_id: int
    signature: str


def _sign(secret: bytes, flow: str, execution: str, event_id: int, execution_id: str) -> str:
    msg = f"{PREFIX}#{flow}#{execution}#{event_id}#{execution_id}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:32]


def make_token(secret: bytes, flow: str, execution: str, event_id: int, execution_id: str) -> str:
    sig = _sign(secret, flow, execution, event_id, execution_id)
    return base64.b64encode(f"{PREFIX}#{flow}#{execution}#{event_id}#{sig}".encode()).decode()


def parse_token(token: str) -> TaskTokenParts:
    """Split a token without checking its signature (see :func:`verify`)."""
    try:
        text = base64.b64decode(token.encode(), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise TokenError("the task token is not valid base64") from None
    parts = text.split("#")
    if len(parts) != 5 or parts[0] != PREFIX or not parts[3].isdigit():
        raise TokenError("the task token is malformed")
    return TaskTokenParts(parts[1], parts[2], int(parts[3]), parts[4])


def verify(secret: bytes, parts: TaskTokenParts, execution_id: str) -> bool:
    expected = _sign(secret, parts.flow_name, parts.execution_name, parts.event_id, execution_id)
    return hmac.compare_digest(expected, parts.signature)

"""The contract between the emulator's HTTP server and the two services it hosts.

The server (``server.py``) parses HTTP into a :class:`Request`, applies fault injection, and
hands the request to a :class:`Service`; a service answers with a :class:`Response` or raises
:class:`ServiceError`, which the service itself renders in its wire format (XML for MNS,
JSON for Serverless Workflow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MNS_PORT = 9911
DEFAULT_FNF_PORT = 9912
DEFAULT_STS_PORT = 9913
DEFAULT_ACCESS_KEY_ID = "emulator-access-key-id"
DEFAULT_ACCESS_KEY_SECRET = "emulator-access-key-secret"
ADMIN_PREFIX = "/_emulator/"
"""Admin API paths (health, faults, reset); never reachable as an MNS or FnF resource."""


@dataclass
class Request:
    method: str
    path: str
    """The path without the query string, percent-decoded."""
    query: str
    """The raw query string, as sent (the MNS SDK does not url-encode receipt handles)."""
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes = b""
    client: str = ""
    target: str = ""
    """The request target exactly as sent (path and query, not decoded); MNS signs it."""
    scheme: str = "http"
    """``https`` when the request came over TLS."""


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error_code: str = ""
    """The service's error code when this answers an error (``TaskAlreadyCompleted``...)."""


class ServiceError(Exception):
    """An error the service answers with its own code and HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Service(Protocol):
    name: str
    """"mns" or "fnf"."""

    def operation(self, request: Request) -> str:
        """The service's name for the operation, e.g. "ReceiveMessage", "ReportTaskSucceeded"."""

    def handle(self, request: Request) -> Response:
        """Answer one request. May block (long polls); runs in a server thread."""

    def error_response(self, request: Request, error: ServiceError) -> Response:
        """Render an error in the service's wire format (used for injected faults too)."""

    def reset(self) -> None:
        """Drop all state (admin API)."""

    def close(self) -> None:
        """Wake every waiting long poll and release resources."""


class MNSSender(Protocol):
    """What the Serverless Workflow emulator needs from the MNS emulator (same process)."""

    def send_message(self, queue_name: str, body: str, priority: int, delay_seconds: int) -> str:
        """Store one message and return its MessageId.

        Raises ServiceError(404, "QueueNotExist", ...) for an unknown queue and
        ServiceError(400, "InvalidArgument", ...) for a body or parameter out of range.
        """

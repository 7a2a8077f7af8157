"""Helpers for the MNS emulator's integration tests: queue creation through the SDK, and a raw HTTP
client that signs requests with the SDK's own signer (for what the SDK itself cannot send)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.auth import Credentials
from mns.mns_client import MNSClient
from mns.queue import Queue, QueueMeta


def make_queue(account: Account, name: str, **attributes: int) -> Queue:
    """Create a queue (raw bodies, no base64) with the given QueueMeta setters' values."""
    meta = QueueMeta()
    for key, value in attributes.items():
        getattr(meta, f"set_{key}")(value)
    queue = account.get_queue(name)
    queue.set_encoding(False)
    queue.create(meta)
    return queue


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def xml_text(self, tag: str) -> str | None:
        start = self.body.find(f"<{tag}>".encode())
        if start < 0:
            return None
        end = self.body.find(f"</{tag}>".encode(), start)
        return self.body[start + len(tag) + 2 : end].decode()

    def json(self) -> object:
        return json.loads(self.body)


def raw_request(
    endpoint: str,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    sign: bool = True,
    access_key_id: str = DEFAULT_ACCESS_KEY_ID,
    secret: str = DEFAULT_ACCESS_KEY_SECRET,
    headers: dict[str, str] | None = None,
    date: str | None = None,
    signed_target: str | None = None,
) -> RawResponse:
    """Send one request, signed exactly as the SDK signs (its own ``MNSClient.get_signature``)."""
    parts = urlsplit(endpoint)
    all_headers: dict[str, str] = {
        "x-mns-version": "2015-06-06",
        "host": parts.netloc,
        "date": date or time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
    }
    if body:
        all_headers["content-type"] = "text/xml;charset=UTF-8"
    all_headers.update(headers or {})
    if sign:
        client = MNSClient(endpoint, access_key_id, secret)
        all_headers["Authorization"] = client.get_signature(
            method, all_headers, signed_target or target, Credentials(access_key_id, secret, "")
        )
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=all_headers)
        response = connection.getresponse()
        return RawResponse(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def admin(emulator: Emulator, method: str, path: str, payload: object = None) -> RawResponse:
    body = b"" if payload is None else json.dumps(payload).encode()
    return raw_request(emulator.mns_endpoint, method, f"/_emulator/{path}", body, sign=False)

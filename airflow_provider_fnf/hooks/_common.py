"""What the MNS and Serverless Workflow hooks share: lazily read connection settings, backoff.
Their credentials are in :mod:`airflow_provider_fnf.credentials`."""

from __future__ import annotations

import abc
import random
import threading
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from airflow.sdk import BaseHook

RETRY_BASE_DELAY_SECONDS = 0.2
"""First backoff delay; it doubles with every attempt (full jitter)."""
RETRY_MAX_DELAY_SECONDS = 5.0
"""Longest single backoff delay."""

SettingsT = TypeVar("SettingsT")


class ConnectionSettingsHook(BaseHook, Generic[SettingsT], abc.ABC):
    """A hook whose settings (endpoint, credentials...) are read from its connection once, on
    first use, never in ``__init__``. Subclasses turn a connection into settings in
    :meth:`_settings_from`; the connection id is the attribute named by ``conn_name_attr``.
    """

    conn_name_attr: str
    """Name of the attribute holding the connection id (``mns_conn_id``, ``fnf_conn_id``)."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: SettingsT | None = None
        self._settings_lock = threading.Lock()

    @abc.abstractmethod
    def _settings_from(self, conn: Any) -> SettingsT:
        """The hook's settings from its connection; raises an error naming the connection id and
        the field when one is missing or wrong."""

    @property
    def settings(self) -> SettingsT:
        """The settings, read from the connection once (on first use)."""
        if self._settings is None:
            with self._settings_lock:
                if self._settings is None:
                    self._settings = self._read_settings()
        return self._settings

    async def aload_connection(self) -> None:
        """Read the connection without blocking the event loop; call it first in a trigger, then
        run the (blocking) hook methods in a thread."""
        if self._settings is None:
            settings = self._settings_from(await self.aget_connection(getattr(self, self.conn_name_attr)))
            with self._settings_lock:
                if self._settings is None:
                    self._settings = settings

    def _read_settings(self) -> SettingsT:
        return self._settings_from(self.get_connection(getattr(self, self.conn_name_attr)))


def extra_str(extra: Mapping[str, Any], key: str) -> str | None:
    """A string setting from a connection's extra; blank means unset."""
    value = extra.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def untrusted_certificate_advice(error_text: str) -> str:
    """What to add to an error whose cause is an HTTPS endpoint's certificate nobody trusts."""
    if "CERTIFICATE_VERIFY_FAILED" not in error_text:
        return ""
    return (
        " The endpoint's TLS certificate is not trusted: for a local emulator started with --tls, point "
        "SSL_CERT_FILE and REQUESTS_CA_BUNDLE at its CA file (ca_file in its ready file)."
    )


def backoff_delay(
    attempt: int,
    *,
    base: float = RETRY_BASE_DELAY_SECONDS,
    cap: float = RETRY_MAX_DELAY_SECONDS,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    Exponential backoff with jitter (between half and all of the exponential delay); a server's ``Retry-After`` hint is honoured as a floor,
    still capped.
    """
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None and retry_after > delay:
        delay = min(cap, retry_after)
    return delay

"""What the MNS and Serverless Workflow hooks share: lazily read connection settings,
credentials from a connection, backoff."""

from __future__ import annotations

import abc
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.masking import mask_secret

if TYPE_CHECKING:
    from alibabacloud_credentials.client import Client as CredentialClient

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


@dataclass(frozen=True)
class AlibabaCloudCredentials:
    """An AccessKey pair and an optional STS security token, as a connection gives them.

    The secret and the token never appear in ``repr()``.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def extra_str(extra: dict[str, Any], key: str) -> str | None:
    """A string setting from a connection's extra; blank means unset."""
    value = extra.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def credentials_from_connection(
    conn_id: str, login: str | None, password: str | None, extra: dict[str, Any]
) -> AlibabaCloudCredentials | None:
    """The connection's static credentials, or ``None`` when it has none (use the default chain).

    The secret and the STS token are registered with the secrets masker before anything else.
    """
    login = (login or "").strip() or None
    secret = password or None
    token = extra_str(extra, "security_token")
    mask_secret(secret)
    mask_secret(token)
    if login and not secret:
        raise FnFConfigurationError(
            f"Connection {conn_id!r} has an AccessKey ID (login) but no AccessKey Secret (password): "
            "set the password field, or clear the login to use the default credentials chain.",
            conn_id=conn_id,
        )
    if secret and not login:
        raise FnFConfigurationError(
            f"Connection {conn_id!r} has an AccessKey Secret (password) but no AccessKey ID (login): "
            "set the login field.",
            conn_id=conn_id,
        )
    if token and not login:
        raise FnFConfigurationError(
            f"Connection {conn_id!r} has an STS security_token in extra but no AccessKey ID (login) and "
            "Secret (password): an STS token is used together with its temporary AccessKey pair.",
            conn_id=conn_id,
        )
    if not login:
        return None
    assert secret is not None
    return AlibabaCloudCredentials(login, secret, token)


_default_chain: CredentialClient | None = None
_default_chain_lock = threading.Lock()


def default_credentials_client() -> CredentialClient:
    """alibabacloud-credentials' default chain: environment variables, OIDC (RRSA), CLI and
    profile files, ECS RAM role, credentials URI. Credentials are fetched (and refreshed) lazily.

    One chain per process: building it starts the ECS RAM role provider's refresh thread.
    """
    global _default_chain
    with _default_chain_lock:
        if _default_chain is None:
            from alibabacloud_credentials.client import Client as CredentialClient

            _default_chain = CredentialClient()
        return _default_chain


class MaskingCredentialsCache:
    """Registers each secret a credentials chain hands out with the masker, once."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def register(self, *values: str | None) -> None:
        for value in values:
            if value and value not in self._seen:
                with self._lock:
                    self._seen.add(value)
                mask_secret(value)


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

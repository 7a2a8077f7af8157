"""The credentials of an ``mns`` or ``fnf`` connection, as the hooks' SDK clients use them.

A connection gives one of:

- an AccessKey pair (login, password), with an optional fixed STS ``security_token``;
- nothing: alibabacloud-credentials' default chain (environment, OIDC/RRSA, profiles, ECS RAM role);
- either of those as the *source* of a RAM role to assume (extra ``role_arn``, and optionally
  ``role_session_name``, ``external_id``, ``session_duration``, ``policy``, ``sts_endpoint``,
  ``sts_region``): the usual cross-account setup, where Airflow runs in one account and the queue
  and the flow live in another.

Both SDKs ask for credentials on every request, so a hook's clients, kept for a task's or a
triggerer's lifetime, always sign with the current ones. A :class:`CredentialSource` hands them
out. For a role it is alibabacloud-credentials' own ``RamRoleArnCredentialsProvider`` that
assumes the role (it signs the STS call and parses the answer); this module decides *when*: a
quarter of the session before it expires (at most :data:`REFRESH_MARGIN_MAX_SECONDS` before),
while the old credentials keep serving the other threads until the new ones arrive. A request
that still meets an expired token makes the hook call :meth:`CredentialSource.refresh` once and
retry. Every secret and security token is registered with the secrets masker as it arrives.

One source serves every hook of the process with the same settings (the per-process cache of
:func:`credential_source`): the triggerer's many triggers on one connection share one STS session.
"""

from __future__ import annotations

import abc
import collections
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_fnf.exceptions import FnFConfigurationError, FnFProviderError, STSAssumeRoleError
from airflow_provider_fnf.hooks._common import extra_str
from airflow_provider_fnf.limits import (
    STS_MAX_EXTERNAL_ID_CHARS,
    STS_MAX_POLICY_CHARS,
    STS_MAX_ROLE_SESSION_NAME_CHARS,
    STS_MAX_SESSION_DURATION_SECONDS,
    STS_MIN_EXTERNAL_ID_CHARS,
    STS_MIN_ROLE_SESSION_NAME_CHARS,
    STS_MIN_SESSION_DURATION_SECONDS,
)
from airflow_provider_fnf.masking import mask_secret, redact_text

if TYPE_CHECKING:
    from alibabacloud_credentials_api import ICredentialsProvider

log = logging.getLogger(__name__)

DEFAULT_SESSION_DURATION_SECONDS = 3_600
"""A role session's length unless the connection sets ``session_duration`` (a role's default
maximum session duration)."""
ROLE_SESSION_NAME_PREFIX = "airflow"
"""Default ``role_session_name``: ``airflow-<dag id>-<task id>`` in a task, ``airflow-<connection id>``
elsewhere (the triggerer, the scheduler); the account that owns the role sees it in its audit log."""
REFRESH_MARGIN_FRACTION = 0.25
"""A session is renewed when less than this part of it remains..."""
REFRESH_MARGIN_MAX_SECONDS = 300.0
"""... and at the latest this long before it expires."""
REFRESH_RETRY_SECONDS = 5.0
"""After a failed renewal while the old credentials still work, the next try waits this long (at most
half of what is left of them)."""
CONNECTION_EXTRA_ROLE_FIELDS = (
    "role_arn",
    "role_session_name",
    "external_id",
    "session_duration",
    "policy",
    "sts_endpoint",
    "sts_region",
)
"""The connection extras of a role assumption; all but role_arn are optional."""
_ROLE_ARN = re.compile(r"acs:ram::\d{1,32}:role/[A-Za-z0-9.\-_/]{1,128}", re.IGNORECASE)
_SESSION_NAME_CHARS = re.compile(r"[^\w.@\-]")
_SESSION_NAME = re.compile(r"[\w.@\-]+")
_EXTERNAL_ID = re.compile(r"[\w=,.@:/\-]+")
_HOST_PORT = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_MAX_CACHED_SOURCES = 64


# --- what a connection says ------------------------------------------------------------------
@dataclass(frozen=True)
class AlibabaCloudCredentials:
    """An AccessKey pair and an optional STS security token, as a connection gives them.

    The secret and the token never appear in ``repr()``.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RAMRoleSettings:
    """The RAM role a connection assumes, and how (its ``role_*`` and ``sts_*`` extras)."""

    role_arn: str
    role_session_name: str
    session_duration: int = DEFAULT_SESSION_DURATION_SECONDS
    external_id: str | None = None
    policy: str | None = None
    sts_endpoint: str | None = None
    """``host[:port]`` (alibabacloud-credentials speaks HTTPS only); None: from ``sts_region``."""
    sts_region: str | None = None


def credentials_from_connection(
    conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any]
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


def role_from_connection(conn_id: str, extra: Mapping[str, Any]) -> RAMRoleSettings | None:
    """The RAM role the connection assumes (extra ``role_arn``...), or ``None``.

    :raises FnFConfigurationError: a role field without ``role_arn``, or a value out of range,
        naming the connection and the field.
    """
    role_arn = extra_str(extra, "role_arn")
    if role_arn is None:
        stray = [name for name in CONNECTION_EXTRA_ROLE_FIELDS[1:] if extra_str(extra, name) is not None]
        if stray:
            raise FnFConfigurationError(
                f"Connection {conn_id!r} sets {', '.join(stray)} in extra but no role_arn: set role_arn "
                "(acs:ram::<account id>:role/<role name>) or remove them.",
                conn_id=conn_id,
            )
        return None

    def bad(name: str, why: str) -> FnFConfigurationError:
        return FnFConfigurationError(
            f"Connection {conn_id!r}: extra {name!r} {why}", conn_id=conn_id, resource=role_arn
        )

    if not _ROLE_ARN.fullmatch(role_arn):
        raise bad("role_arn", f"must look like acs:ram::<account id>:role/<role name>, got {role_arn!r}")
    session_name = extra_str(extra, "role_session_name") or default_role_session_name(conn_id)
    if not (
        STS_MIN_ROLE_SESSION_NAME_CHARS <= len(session_name) <= STS_MAX_ROLE_SESSION_NAME_CHARS
        and _SESSION_NAME.fullmatch(session_name)
    ):
        raise bad(
            "role_session_name",
            f"must be {STS_MIN_ROLE_SESSION_NAME_CHARS}..{STS_MAX_ROLE_SESSION_NAME_CHARS} characters of "
            f"letters, digits, '.', '@', '-' and '_', got {session_name!r}",
        )
    external_id = extra_str(extra, "external_id")
    if external_id is not None and not (
        STS_MIN_EXTERNAL_ID_CHARS <= len(external_id) <= STS_MAX_EXTERNAL_ID_CHARS
        and _EXTERNAL_ID.fullmatch(external_id)
    ):
        raise bad(
            "external_id",
            f"must be {STS_MIN_EXTERNAL_ID_CHARS}..{STS_MAX_EXTERNAL_ID_CHARS} characters of letters, "
            "digits and =,.@:/-_",
        )
    return RAMRoleSettings(
        role_arn=role_arn,
        role_session_name=session_name,
        session_duration=_session_duration(extra.get("session_duration"), bad),
        external_id=external_id,
        policy=_policy(extra.get("policy"), bad),
        sts_endpoint=_sts_endpoint(extra_str(extra, "sts_endpoint"), bad),
        sts_region=extra_str(extra, "sts_region"),
    )


def default_role_session_name(conn_id: str) -> str:
    """``airflow-<dag id>-<task id>`` when called in a task (Airflow exports them to the task's
    environment), else ``airflow-<connection id>``; cut to 64 characters STS accepts."""
    dag_id, task_id = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
    parts = [ROLE_SESSION_NAME_PREFIX, *([dag_id, task_id] if dag_id and task_id else [conn_id])]
    name = _SESSION_NAME_CHARS.sub("-", "-".join(parts))
    return name[:STS_MAX_ROLE_SESSION_NAME_CHARS]


def _session_duration(value: Any, bad: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_SESSION_DURATION_SECONDS
    try:
        seconds = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        seconds = -1
    if not STS_MIN_SESSION_DURATION_SECONDS <= seconds <= STS_MAX_SESSION_DURATION_SECONDS:
        raise bad(
            "session_duration",
            f"must be a whole number of seconds from {STS_MIN_SESSION_DURATION_SECONDS} to "
            f"{STS_MAX_SESSION_DURATION_SECONDS}, got {value!r}",
        )
    return seconds


def _policy(value: Any, bad: Any) -> str | None:
    """The inline session policy as compact JSON text (extra may hold it as an object or as text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            document = json.loads(value)
        except ValueError as exc:
            raise bad("policy", f"is not JSON ({exc}); give a RAM policy document") from None
    else:
        document = value
    if not isinstance(document, dict) or "Statement" not in document:
        raise bad("policy", 'must be a RAM policy document: a JSON object with "Version" and "Statement"')
    # Compact JSON has spaces and tildes only inside strings, where JSON escapes mean the same.
    # alibabacloud-credentials signs with quote_plus, which encodes both unlike the signature
    # method (space as "+" for "%20", "~" as "%7E"): sent escaped, the two agree.
    text = json.dumps(document, separators=(",", ":")).replace(" ", "\\u0020").replace("~", "\\u007e")
    if len(text) > STS_MAX_POLICY_CHARS:
        raise bad("policy", f"is {len(text)} characters as compact JSON, over STS's {STS_MAX_POLICY_CHARS}")
    return text


def _sts_endpoint(value: str | None, bad: Any) -> str | None:
    if value is None:
        return None
    endpoint = value.rstrip("/")
    scheme, sep, rest = endpoint.partition("://")
    if sep:
        if scheme.lower() != "https":
            raise bad(
                "sts_endpoint",
                f"must be https:// or host[:port], got {value!r}: alibabacloud-credentials reaches STS "
                "over HTTPS only (for the local emulator, start it with --tls)",
            )
        endpoint = rest
    if not _HOST_PORT.fullmatch(endpoint):
        raise bad(
            "sts_endpoint", f"must be host[:port] (e.g. sts-vpc.cn-hangzhou.aliyuncs.com), got {value!r}"
        )
    return endpoint


# --- credentials as the SDKs receive them ----------------------------------------------------
@dataclass(frozen=True)
class IssuedCredentials:
    """One set of credentials a source handed out; ``expiration`` in epoch seconds (None: none
    known). ``generation`` grows with every new set a source fetches."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(repr=False)
    expiration: float | None = None
    generation: int = 0
    provider_name: str = "static"


class CredentialSource(abc.ABC):
    """Hands out a connection's current credentials; thread-safe."""

    conn_id: str

    @abc.abstractmethod
    def get(self) -> IssuedCredentials:
        """The credentials to sign the next request with."""

    def refresh(self, stale: IssuedCredentials | None) -> bool:
        """After a request was answered "security token expired": fetch new credentials, unless
        another thread already did since ``stale`` was handed out. True when the next
        :meth:`get` gives other credentials than ``stale`` (a retry is worth it)."""
        return False

    @abc.abstractmethod
    def describe(self) -> str:
        """Who signs, for messages: ``AccessKey LTAI...``, ``RAM role ... assumed with ...``."""


class StaticCredentialSource(CredentialSource):
    def __init__(self, conn_id: str, credentials: AlibabaCloudCredentials) -> None:
        self.conn_id = conn_id
        self._issued = IssuedCredentials(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )

    def get(self) -> IssuedCredentials:
        return self._issued

    def describe(self) -> str:
        kind = "AccessKey with a fixed STS token" if self._issued.security_token else "AccessKey"
        return f"{kind} {self._issued.access_key_id}"


class DefaultChainCredentialSource(CredentialSource):
    """alibabacloud-credentials' default chain; its providers cache and renew what they fetch."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._provider = default_credentials_provider()
        self._lock = threading.Lock()
        self._last: IssuedCredentials | None = None

    def get(self) -> IssuedCredentials:
        from alibabacloud_credentials.exceptions import CredentialException

        try:
            fetched = self._provider.get_credentials()
        except CredentialException as exc:
            raise CredentialsUnavailableError(
                f"Connection {self.conn_id!r} has no AccessKey and the default credentials chain found "
                "none: set login/password on the connection, or ALIBABA_CLOUD_ACCESS_KEY_ID / "
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET, an OIDC (RRSA) token file or an ECS RAM role."
            ) from exc
        with self._lock:
            last = self._last
            if (
                last is None
                or last.access_key_id != fetched.get_access_key_id()
                or last.access_key_secret != fetched.get_access_key_secret()
                or last.security_token != fetched.get_security_token()
            ):
                self._last = last = _issued_from(fetched, (last.generation + 1) if last else 1)
            return last

    def refresh(self, stale: IssuedCredentials | None) -> bool:
        return self.get() != stale

    def describe(self) -> str:
        return "the default credentials chain"


class CredentialsUnavailableError(Exception):
    """No credentials could be had (the default chain found none); each hook raises it as its
    service's authentication error."""


class SDKCredentials:
    """The base of each SDK's credentials adapter, asked on every request: it hands out the
    connection's current credentials from ``source``, so a client kept for long signs with
    renewed ones. What this thread was last given is kept (:attr:`last_issued`), so that a request
    answered "token expired" renews exactly those. A subclass names its service's authentication
    error (``unavailable_error``) and adds the getters its SDK calls."""

    unavailable_error: type[FnFProviderError] = FnFProviderError

    def __init__(self, conn_id: str, source: CredentialSource) -> None:
        self._conn_id = conn_id
        self.source = source
        self._local = threading.local()

    def issue(self) -> IssuedCredentials:
        """The current credentials, remembered as this thread's last issued."""
        try:
            issued = self.source.get()
        except CredentialsUnavailableError as exc:
            raise self.unavailable_error(str(exc), conn_id=self._conn_id) from exc
        self._local.issued = issued
        return issued

    @property
    def last_issued(self) -> IssuedCredentials | None:
        return getattr(self._local, "issued", None)


class RAMRoleCredentialSource(CredentialSource):
    """Credentials of a RAM role, assumed by alibabacloud-credentials' ``RamRoleArnCredentialsProvider``
    with the connection's AccessKey pair (or the default chain) as the source, and renewed before
    they expire."""

    def __init__(self, conn_id: str, source: AlibabaCloudCredentials | None, role: RAMRoleSettings) -> None:
        self.conn_id = conn_id
        self._source = source
        self._role = role
        self._provider = self._new_provider()
        self._lock = threading.Lock()
        self._current: IssuedCredentials | None = None
        self._fetched_at = 0.0
        self._next_try = 0.0
        _redact_credentials_library_log()

    def describe(self) -> str:
        return (
            f"RAM role {self._role.role_arn} (session {self._role.role_session_name}) assumed with "
            f"{self.describe_source()}"
        )

    def describe_source(self) -> str:
        return f"AccessKey {self._source.access_key_id}" if self._source else "the default credentials chain"

    def _new_provider(self) -> ICredentialsProvider:
        from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider

        role = self._role
        options: dict[str, Any] = {
            "role_arn": role.role_arn,
            "role_session_name": role.role_session_name,
            "duration_seconds": role.session_duration,
            "policy": role.policy,
            "external_id": role.external_id,
            "sts_endpoint": role.sts_endpoint,
            "sts_region_id": role.sts_region,
        }
        if self._source is not None:
            options.update(
                access_key_id=self._source.access_key_id,
                access_key_secret=self._source.access_key_secret,
                security_token=self._source.security_token,
            )
        else:
            options["credentials_provider"] = default_credentials_provider()
        return RamRoleArnCredentialsProvider(**options)

    def get(self) -> IssuedCredentials:
        current = self._current
        now = time.time()
        if current is not None and now < self._renew_at(current):
            return current
        if current is not None and current.expiration is not None and now < current.expiration - 1:
            # Due, but still good: one thread renews while the others go on with these.
            if now < self._next_try or not self._lock.acquire(blocking=False):
                return current
            try:
                if self._current is not current:
                    return self._current or current
                return self._assume(stale=current)
            except STSAssumeRoleError as error:
                self._next_try = now + min(REFRESH_RETRY_SECONDS, (current.expiration - now) / 2)
                log.warning(
                    "Renewing the STS session of RAM role %s for connection %s failed (%s); the current "
                    "credentials stay valid for %.0f s more, retrying before then",
                    self._role.role_arn,
                    self.conn_id,
                    error.code or type(error.__cause__).__name__,
                    current.expiration - now,
                )
                return current
            finally:
                self._lock.release()
        with self._lock:
            if self._current is not current and self._current is not None:
                return self._current
            return self._assume(stale=current)

    def refresh(self, stale: IssuedCredentials | None) -> bool:
        with self._lock:
            if self._current is not None and self._current != stale:
                return True  # another thread renewed them meanwhile
            self._assume(stale=self._current, force=True)
            return self._current != stale

    def _renew_at(self, issued: IssuedCredentials) -> float:
        if issued.expiration is None:
            return float("inf")
        lifetime = max(0.0, issued.expiration - self._fetched_at)
        return issued.expiration - min(REFRESH_MARGIN_MAX_SECONDS, lifetime * REFRESH_MARGIN_FRACTION)

    def _assume(self, stale: IssuedCredentials | None, force: bool = False) -> IssuedCredentials:
        """Fetch from the provider (its lock held). The provider keeps its own cache, renewed 15
        minutes before expiry: when it hands back the very credentials we are replacing (a
        session rejected as expired before that), a new provider assumes the role afresh."""
        fetched_at = time.time()
        issued = self._fetch()
        if stale is not None and issued.access_key_id == stale.access_key_id and (force or _expired(stale)):
            self._provider = self._new_provider()
            issued = self._fetch()
        generation = (stale.generation + 1) if stale is not None else 1
        issued = IssuedCredentials(
            issued.access_key_id,
            issued.access_key_secret,
            issued.security_token,
            issued.expiration,
            generation,
            issued.provider_name,
        )
        self._current, self._fetched_at, self._next_try = issued, fetched_at, 0.0
        log.info(
            "Assumed RAM role %s for connection %s (session %s): AccessKey %s, valid for %.0f s",
            self._role.role_arn,
            self.conn_id,
            self._role.role_session_name,
            issued.access_key_id,
            (issued.expiration or fetched_at) - fetched_at,
        )
        return issued

    def _fetch(self) -> IssuedCredentials:
        try:
            fetched = self._provider.get_credentials()
        except Exception as exc:
            raise assume_role_error(self.conn_id, self._role, self.describe_source(), exc) from exc
        return _issued_from(fetched, 0)


def _expired(issued: IssuedCredentials) -> bool:
    return issued.expiration is not None and time.time() >= issued.expiration


def _issued_from(fetched: Any, generation: int) -> IssuedCredentials:
    """Our copy of what a provider returned; the secret and token are masked at once."""
    secret, token = fetched.get_access_key_secret(), fetched.get_security_token() or None
    mask_secret(secret)
    mask_secret(token)
    expiration = getattr(fetched, "get_expiration", lambda: None)()
    return IssuedCredentials(
        fetched.get_access_key_id(),
        secret,
        token,
        float(expiration) if expiration else None,
        generation,
        fetched.get_provider_name() or "alibabacloud-credentials",
    )


# --- errors of AssumeRole ------------------------------------------------------------------
_STS_ANSWER = re.compile(r"http_code: (?P<status>\d+), result: (?P<body>.*)$", re.DOTALL)
_SOURCE_REJECTED_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "SignatureNotMatch",
    "InvalidSecurityToken",
    "MissingSecurityToken",
)


_PARAMETER_FIELDS = {
    "InvalidParameter.RoleSessionName": "role_session_name",
    "InvalidParameter.ExternalId": "external_id",
    "InvalidParameter.PolicyGrammar": "policy",
    "InvalidParameter.RoleArn": "role_arn",
}


def assume_role_error(
    conn_id: str, role: RAMRoleSettings, source: str, exc: BaseException
) -> STSAssumeRoleError:
    """Our error for a failed AssumeRole: it names the connection and the role, and says what to
    check. ``source`` names the source identity (``AccessKey ...``, ``the default credentials chain``)."""
    status, code, request_id, detail = _sts_answer(redact_text(str(exc)))
    sts = f"STS {code}: {detail}" if code else detail
    return STSAssumeRoleError(
        f"Connection {conn_id!r} could not assume RAM role {role.role_arn} ({sts}): "
        f"{_assume_role_advice(code, status, role, source)}.",
        conn_id=conn_id,
        resource=role.role_arn,
        code=code,
        status=status,
        request_id=request_id,
    )


def _sts_answer(text: str) -> tuple[int | None, str | None, str | None, str]:
    """(HTTP status, Code, RequestId, Message) from alibabacloud-credentials' error text; the
    status is None when STS did not answer."""
    match = _STS_ANSWER.search(text)
    if not match:
        return None, None, None, text
    try:
        answer = json.loads(match.group("body"))
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return int(match.group("status")), None, None, text
    return (
        int(match.group("status")),
        answer.get("Code"),
        answer.get("RequestId"),
        str(answer.get("Message") or text),
    )


def _assume_role_advice(code: str | None, status: int | None, role: RAMRoleSettings, source: str) -> str:
    if code == "EntityNotExist.Role":
        return (
            "check role_arn in the connection's extra: the account id and the role name must be those "
            "of the role in the account that owns the queue and the flow"
        )
    if code is not None and (code.startswith("NoPermission") or code in ("AccessDenied", "Forbidden.RAM")):
        external = (
            "that its sts:ExternalId condition equals the connection's external_id"
            if role.external_id
            else "whether it has an sts:ExternalId condition (then set external_id in the connection's extra)"
        )
        return (
            f"check the role's trust policy: it must name the source identity ({source}) or its "
            f"account, and {external}; and that the source identity may call sts:AssumeRole on the "
            "role (AliyunSTSAssumeRoleAccess or a custom policy in its own account)"
        )
    if code == "InvalidParameter.DurationSeconds":
        return (
            f"session_duration {role.session_duration} s is above the role's maximum session duration: "
            "lower session_duration or raise the role's maximum"
        )
    if code is not None and code.startswith("InvalidParameter."):
        return f"check {_PARAMETER_FIELDS.get(code, 'the role settings')} in the connection's extra"
    if code is not None and code.startswith(_SOURCE_REJECTED_CODES):
        return (
            "STS rejected the source credentials: check the AccessKey ID (login) and Secret (password), "
            "or the default chain's, and the machine's clock"
        )
    if status is None:
        endpoint = role.sts_endpoint or (
            f"sts.{role.sts_region}.aliyuncs.com" if role.sts_region else "sts.aliyuncs.com"
        )
        return (
            f"check that STS at https://{endpoint} is reachable (sts_endpoint / sts_region in the "
            "connection's extra, the network, a proxy); alibabacloud-credentials speaks HTTPS only and "
            "verifies the certificate (a local emulator needs --tls and its CA in SSL_CERT_FILE / "
            "REQUESTS_CA_BUNDLE)"
        )
    return "check the connection's role settings and the role in RAM"


# --- one source per connection settings, per process ------------------------------------------
_sources: collections.OrderedDict[tuple[Any, ...], CredentialSource] = collections.OrderedDict()
_sources_lock = threading.Lock()


def credential_source(
    conn_id: str, credentials: AlibabaCloudCredentials | None, role: RAMRoleSettings | None
) -> CredentialSource:
    """The process's source for these settings (built on first use): every hook with the same
    connection settings shares its credentials, and a role's STS session."""
    key = (conn_id, credentials, role)
    with _sources_lock:
        source = _sources.get(key)
        if source is not None:
            _sources.move_to_end(key)
            return source
        if role is not None:
            source = RAMRoleCredentialSource(conn_id, credentials, role)
        elif credentials is not None:
            source = StaticCredentialSource(conn_id, credentials)
        else:
            source = DefaultChainCredentialSource(conn_id)
        _sources[key] = source
        while len(_sources) > _MAX_CACHED_SOURCES:
            _sources.popitem(last=False)
        return source


_default_provider: ICredentialsProvider | None = None
_default_provider_lock = threading.Lock()


def default_credentials_provider() -> ICredentialsProvider:
    """alibabacloud-credentials' default chain: environment variables, OIDC (RRSA), CLI and
    profile files, ECS RAM role, credentials URI. Credentials are fetched (and renewed) lazily.

    One chain per process: building it starts the ECS RAM role provider's refresh thread.
    """
    global _default_provider
    with _default_provider_lock:
        if _default_provider is None:
            from alibabacloud_credentials.provider import DefaultCredentialsProvider

            _default_provider = DefaultCredentialsProvider()
        return _default_provider


def _forget_after_fork() -> None:
    global _default_provider, _sources_lock, _default_provider_lock
    _sources.clear()
    _sources_lock = threading.Lock()
    _default_provider_lock = threading.Lock()
    _default_provider = None


os.register_at_fork(after_in_child=_forget_after_fork)


class _RedactingFilter(logging.Filter):
    """alibabacloud-credentials logs a failed STS call's text and traceback, which quote the
    request URL (the source's security token and the signature in it), to its own stderr handler
    too, where no secrets masker stands: they are cut out of the record first."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self._formatter.formatException(record.exc_info)}"
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact_text(message), None
        return True


_library_log_redacted = False


def _redact_credentials_library_log() -> None:
    global _library_log_redacted
    if not _library_log_redacted:
        logging.getLogger("credentials").addFilter(_RedactingFilter())
        _library_log_redacted = True

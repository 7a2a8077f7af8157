"""Who the emulated services accept: AccessKey pairs, fixed STS tokens, RAM roles, and the
temporary credentials the STS emulator issues for those roles.

One :class:`Identities` is shared by every service of an :class:`~fnf_emulator.server.Emulator`:
MNS, Serverless Workflow and STS ask it for the secret to check a request's signature with
(:meth:`Identities.verify`), and each service answers a rejection (:class:`IdentityRejected`) with
its own error code. Temporary credentials are accepted until their expiration and rejected after
it as expired (not as unknown), so a client can tell that it must refresh them.

The emulator checks identities, not permissions: it evaluates no RAM policy, neither the role's
nor the inline ``Policy`` of an AssumeRole request (which it only checks to be a JSON object).
"""

from __future__ import annotations

import base64
import collections
import enum
import hashlib
import json
import logging
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fnf_emulator.limits import (
    STS_DEFAULT_DURATION_SECONDS,
    STS_MAX_DURATION_SECONDS,
    STS_MIN_DURATION_SECONDS,
)

log = logging.getLogger(__name__)

ISSUED_CREDENTIALS_FILE = "sts-credentials.json"
"""Under ``data_dir``: the temporary credentials issued so far, so a restart keeps them valid."""
EXPIRED_CREDENTIALS_KEPT_SECONDS = 86_400
"""Temporary credentials are answered as *expired* (not unknown) for this long after expiring."""
TEMPORARY_ACCESS_KEY_PREFIX = "STS."
ROLE_ARN = re.compile(r"acs:ram::(?P<account>\d{1,32}):role/(?P<name>[A-Za-z0-9.\-_/]{1,128})")
"""``acs:ram::<account id>:role/<role name>``; the emulator keeps the case it was given."""


class Rejection(enum.Enum):
    """Why a request's credentials are refused; each service answers with its own code."""

    UNKNOWN_ACCESS_KEY = "unknown access key"
    SECURITY_TOKEN_INVALID = "security token invalid"
    SECURITY_TOKEN_MISSING = "security token missing"
    SECURITY_TOKEN_EXPIRED = "security token expired"


class IdentityRejected(Exception):
    def __init__(self, reason: Rejection, access_key_id: str) -> None:
        super().__init__(f"{reason.value}: {access_key_id}")
        self.reason = reason
        self.access_key_id = access_key_id


@dataclass(frozen=True)
class RamRole:
    """A RAM role that the STS emulator lets callers assume.

    :param arn: ``acs:ram::<account id>:role/<name>``.
    :param external_id: when set, AssumeRole must give exactly this ``ExternalId`` (the trust
        policy's ``sts:ExternalId`` condition).
    :param trusted_access_key_ids: AccessKey IDs allowed to assume the role (the trust policy's
        principals); ``None``: every AccessKey pair the emulator accepts, and temporary credentials.
    :param max_session_duration: longest DurationSeconds AssumeRole accepts (900..43,200).
    :param session_seconds: issue credentials that live this many seconds, whatever
        DurationSeconds asks: expiry can then be tested in seconds.
    """

    arn: str
    external_id: str | None = None
    trusted_access_key_ids: frozenset[str] | None = None
    max_session_duration: int = STS_DEFAULT_DURATION_SECONDS
    session_seconds: int | None = None

    def __post_init__(self) -> None:
        if not ROLE_ARN.fullmatch(self.arn):
            raise ValueError(f"RAM role ARN {self.arn!r} is not of the form acs:ram::<account id>:role/<name>")
        if not STS_MIN_DURATION_SECONDS <= self.max_session_duration <= STS_MAX_DURATION_SECONDS:
            raise ValueError(
                f"RAM role {self.arn}: max_session_duration must be {STS_MIN_DURATION_SECONDS}.."
                f"{STS_MAX_DURATION_SECONDS} seconds, got {self.max_session_duration}"
            )
        if self.session_seconds is not None and self.session_seconds < 1:
            raise ValueError(f"RAM role {self.arn}: session_seconds must be at least 1, got {self.session_seconds}")

    @property
    def account_id(self) -> str:
        match = ROLE_ARN.fullmatch(self.arn)
        assert match is not None
        return match.group("account")

    @property
    def role_id(self) -> str:
        """A stable numeric id, as RAM gives every role one."""
        return str(int(hashlib.sha256(self.arn.lower().encode()).hexdigest()[:15], 16))

    @classmethod
    def parse(cls, text: str) -> RamRole:
        """``ARN[,external_id=ID][,trust=KEY_ID[+KEY_ID...]][,max_session_duration=S][,session_seconds=S]``
        (the command line's ``--ram-role``)."""
        arn, *options = [part.strip() for part in text.split(",")]
        values: dict[str, object] = {}
        for option in options:
            name, sep, value = option.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or not value:
                raise ValueError(f"--ram-role {text!r}: option {option!r} is not name=value")
            if name == "external_id":
                values["external_id"] = value
            elif name == "trust":
                values["trusted_access_key_ids"] = frozenset(v for v in value.split("+") if v)
            elif name in ("max_session_duration", "session_seconds"):
                try:
                    values[name] = int(value)
                except ValueError:
                    raise ValueError(f"--ram-role {text!r}: {name} must be a whole number of seconds") from None
            else:
                raise ValueError(
                    f"--ram-role {text!r}: unknown option {name!r} (external_id, trust, "
                    "max_session_duration, session_seconds)"
                )
        return cls(arn, **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TemporaryCredentials:
    """What AssumeRole hands out. ``expiration`` is epoch seconds (whole, as the wire shows it)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: int
    role_arn: str
    role_session_name: str
    source_access_key_id: str


class Identities:
    """The AccessKey pairs, fixed STS tokens, RAM roles and issued temporary credentials of one
    emulator. Thread-safe.

    :param access_keys: AccessKey ID -> secret (long-term pairs).
    :param sts_tokens: fixed security token -> the AccessKey ID it belongs to (never expires).
    :param roles: the RAM roles callers may assume; :meth:`reset` goes back to these.
    :param session_seconds: lifetime of every issued session, whatever DurationSeconds asks (a
        role's own ``session_seconds`` wins); ``None``: DurationSeconds.
    :param data_dir: keep issued credentials in ``data_dir/sts-credentials.json``.
    """

    def __init__(
        self,
        access_keys: Mapping[str, str],
        sts_tokens: Mapping[str, str] | None = None,
        roles: Iterable[RamRole] = (),
        session_seconds: int | None = None,
        data_dir: str | None = None,
    ) -> None:
        if session_seconds is not None and session_seconds < 1:
            raise ValueError(f"session_seconds must be at least 1, got {session_seconds}")
        self.access_keys = dict(access_keys)
        self.sts_tokens = dict(sts_tokens or {})
        self.session_seconds = session_seconds
        self._configured = {role.arn.lower(): role for role in roles}
        self._roles = dict(self._configured)
        self._issued: dict[str, TemporaryCredentials] = {}
        self._signers: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._path = Path(data_dir) / ISSUED_CREDENTIALS_FILE if data_dir else None
        self._load()

    # --- roles ------------------------------------------------------------------------------
    def add_role(self, role: RamRole) -> RamRole:
        """Let callers assume ``role`` (until :meth:`reset`, unless it was configured)."""
        with self._lock:
            self._roles[role.arn.lower()] = role
        return role

    def role(self, arn: str) -> RamRole | None:
        with self._lock:
            return self._roles.get(arn.lower())

    @property
    def roles(self) -> list[RamRole]:
        with self._lock:
            return list(self._roles.values())

    def reset(self) -> None:
        """Back to the configured roles. Issued credentials stay valid until they expire: a
        client may hold them across an emulator reset as it would across anything else."""
        with self._lock:
            self._roles = dict(self._configured)
            self._signers.clear()

    # --- checking requests ---------------------------------------------------------------------
    def verify(
        self, access_key_id: str, security_token: str | None, now: float | None = None, *, service: str = ""
    ) -> str:
        """The secret to check the request's signature with; counts the AccessKey ID as a signer
        of ``service``'s requests (:meth:`signers`).

        :raises IdentityRejected: an unknown AccessKey ID, a security token that is not the one
            of the AccessKey ID, temporary credentials without their token, or past their expiration.
        """
        now = time.time() if now is None else now
        with self._lock:
            self._signers[(service, access_key_id)] += 1
            secret = self.access_keys.get(access_key_id)
            issued = self._issued.get(access_key_id) if secret is None else None
            token_owner = self.sts_tokens.get(security_token) if security_token else None
        if secret is not None:
            if security_token and token_owner != access_key_id:
                raise IdentityRejected(Rejection.SECURITY_TOKEN_INVALID, access_key_id)
            return secret
        if issued is None:
            raise IdentityRejected(Rejection.UNKNOWN_ACCESS_KEY, access_key_id)
        if not security_token:
            raise IdentityRejected(Rejection.SECURITY_TOKEN_MISSING, access_key_id)
        if not secrets.compare_digest(security_token, issued.security_token):
            raise IdentityRejected(Rejection.SECURITY_TOKEN_INVALID, access_key_id)
        if now >= issued.expiration:
            raise IdentityRejected(Rejection.SECURITY_TOKEN_EXPIRED, access_key_id)
        return issued.access_key_secret

    # --- issuing temporary credentials -----------------------------------------------------------
    def issue(
        self,
        role: RamRole,
        role_session_name: str,
        duration_seconds: int,
        source_access_key_id: str,
        now: float | None = None,
    ) -> TemporaryCredentials:
        """New temporary credentials for ``role``; their lifetime is the role's or the emulator's
        ``session_seconds`` when set, else ``duration_seconds``."""
        now = time.time() if now is None else now
        lifetime = role.session_seconds or self.session_seconds or duration_seconds
        credentials = TemporaryCredentials(
            access_key_id=TEMPORARY_ACCESS_KEY_PREFIX + _random_text(24),
            access_key_secret=_random_text(44),
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(192)).decode(),
            expiration=int(now + lifetime),
            role_arn=role.arn,
            role_session_name=role_session_name,
            source_access_key_id=source_access_key_id,
        )
        with self._lock:
            self._issued = {
                key: issued
                for key, issued in self._issued.items()
                if issued.expiration + EXPIRED_CREDENTIALS_KEPT_SECONDS > now
            }
            self._issued[credentials.access_key_id] = credentials
            self._save()
        log.info(
            "STS issued temporary AccessKey %s for role %s (session %s, source AccessKey %s), valid %d s",
            credentials.access_key_id,
            role.arn,
            role_session_name,
            source_access_key_id,
            lifetime,
        )
        return credentials

    def issued(self, access_key_id: str) -> TemporaryCredentials | None:
        with self._lock:
            return self._issued.get(access_key_id)

    def issued_credentials(self) -> list[TemporaryCredentials]:
        """Every set of temporary credentials issued (and not yet forgotten), oldest first."""
        with self._lock:
            return list(self._issued.values())

    def signers(self, service: str) -> dict[str, int]:
        """AccessKey ID -> requests to ``service`` ("mns", "fnf", "sts") that presented it, since
        the start or the last :meth:`reset`: whose credentials a client really signs with."""
        with self._lock:
            return {key: count for (name, key), count in self._signers.items() if name == service}

    def expire_now(self, access_key_id: str) -> None:
        """Make issued credentials expire at once (tests of what a client does then)."""
        with self._lock:
            issued = self._issued[access_key_id]
            self._issued[access_key_id] = replace(issued, expiration=int(time.time()))
            self._save()

    # --- persistence ---------------------------------------------------------------------------
    def _load(self) -> None:
        if self._path is None:
            return
        try:
            saved = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("Ignoring unreadable %s (%s): temporary credentials issued before are gone", self._path, exc)
            return
        for item in saved:
            credentials = TemporaryCredentials(**item)
            self._issued[credentials.access_key_id] = credentials

    def _save(self) -> None:
        if self._path is None:
            return
        os.makedirs(self._path.parent, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps([asdict(c) for c in self._issued.values()]), encoding="utf-8")
        os.chmod(temporary, 0o600)
        temporary.replace(self._path)


_ALPHABET = string.ascii_letters + string.digits


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))

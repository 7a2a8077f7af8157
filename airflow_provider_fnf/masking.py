"""Keep secrets and task tokens out of log lines.

Access key secrets, STS security tokens and Serverless Workflow task tokens are registered with
Airflow's secrets masker before the provider uses them, so any log line (ours, the SDKs', a
traceback) shows ``***`` instead. Task tokens also travel URL-encoded in request URLs, and an SDK
network error repeats that URL: the encoded forms are registered too, and :func:`redact_text`
strips credentials and tokens from SDK messages before they go into our own exception messages.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus

try:  # Airflow 3.1+
    from airflow.sdk.log import mask_secret as _airflow_mask_secret
except ImportError:  # pragma: no cover - Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import (  # type: ignore[no-redef]
        mask_secret as _airflow_mask_secret,
    )

__all__ = [
    "AIRFLOW_MASKER",
    "mask_secret",
    "mask_task_token",
    "mask_task_token_by_shape",
    "redact_text",
    "scrub_exception_chain",
]

_MASKED: set[str] = set()
"""Values already registered in this process: registering is not free, tokens repeat."""

_SENSITIVE_QUERY = re.compile(
    r"(?P<key>\b(?:TaskToken|SecurityToken|Signature|security-token)=)[^&\s'\"]*",
    re.IGNORECASE,
)


def mask_secret(value: str | None) -> None:
    """Register ``value`` (and its URL-encoded forms) with Airflow's secrets masker.

    Empty values are ignored; Airflow itself skips values shorter than its
    ``[logging] min_length_masked_secret`` (5 characters by default).
    """
    if not value or value in _MASKED:
        return
    for variant in {value, quote(value, safe=""), quote_plus(value, safe=""), quote(value, safe="~")}:
        _airflow_mask_secret(variant)
    _MASKED.add(value)


def mask_task_token(token: str | None) -> str | None:
    """Register a Serverless Workflow task token with the secrets masker and return it unchanged.

    Call it as soon as a token is read from a message or a run's conf, before anything is logged:
    ``token = mask_task_token(conf["task_token"])``.
    """
    if token:
        mask_secret(token)
    return token


TASK_TOKEN_SHAPE = re.compile(r"djEj[A-Za-z0-9+/]{16,}={0,2}")
"""The documented token shape: base64 of ``v1#<flow>#<execution>#<event>#<signature>``
(``djEj`` is base64 of ``v1#``)."""
_TASK_TOKEN_SHAPE_PATTERN = r"djEj(?:[A-Za-z0-9+/=]|%2B|%2F|%3D){16,}"
"""Matches such tokens raw and URL-encoded, as one pattern of Airflow's secrets masker."""


def mask_task_token_by_shape(token: str | None) -> str | None:
    """Mask a task token in a long-lived process (the triggerer) without growing the masker.

    Airflow's masker rebuilds one regular expression of every secret it holds each time a new
    one is added, so registering every token of a long-running trigger costs more with each
    token (measured: 15 ms per token after 90 tokens, 356 ms after 990; see
    docs/benchmarks.md) and keeps them all in memory. Tokens of the documented shape are
    masked instead by one pattern registered once; any other token is registered literally.
    """
    if not token:
        return token
    if TASK_TOKEN_SHAPE.fullmatch(token) and AIRFLOW_MASKER.add_pattern(_TASK_TOKEN_SHAPE_PATTERN):
        return token
    return mask_task_token(token)


class AirflowMaskerShim:
    """The one place that reaches into Airflow's private secrets masker.

    Airflow's public ``mask_secret`` registers literal values only; a pattern needs the masker
    itself: ``airflow.sdk.log._secrets_masker()``, whose ``patterns`` (a set of regular
    expressions) ``add_mask`` joins into ``replacer`` every time it learns a secret, and whose
    ``replacer`` every redaction uses. :meth:`shape_problem` says what no longer holds when an
    Airflow release changes that; tests/unit/test_masking.py fails on it, and at run time the
    provider then falls back to literal masking (safe, only slower) and logs it once.
    """

    def __init__(self) -> None:
        self._warned = False

    @staticmethod
    def masker() -> Any:
        from airflow.sdk.log import _secrets_masker  # private: the masker has no public pattern API

        return _secrets_masker()

    def shape_problem(self) -> str | None:
        """None when the masker has the shape we rely on, else what differs."""
        try:
            masker = self.masker()
        except ImportError as err:
            return f"airflow.sdk.log._secrets_masker cannot be imported ({err})"
        patterns = getattr(masker, "patterns", None)
        if not isinstance(patterns, set) or not all(isinstance(p, str) for p in patterns):
            return f"the masker's patterns are not a set of strings (got {type(patterns).__name__})"
        replacer = getattr(masker, "replacer", None)
        if replacer is not None and not isinstance(replacer, re.Pattern):
            return (
                f"the masker's replacer is not a compiled regular expression (got {type(replacer).__name__})"
            )
        if not callable(getattr(masker, "add_mask", None)):
            return "the masker has no add_mask"
        return None

    def add_pattern(self, pattern: str) -> bool:
        """Register a regular expression with the masker; False (and one log line) when its shape
        is not the one we know, so that the caller falls back to literal masking."""
        problem = self.shape_problem()
        if problem is not None:
            if not self._warned:
                self._warned = True
                logging.getLogger(__name__).warning(
                    "Airflow's secrets masker changed (%s): task tokens are masked one by one instead",
                    problem,
                )
            return False
        masker = self.masker()
        if pattern not in masker.patterns:
            masker.patterns.add(pattern)
            masker.replacer = re.compile("|".join(masker.patterns))
        return True


AIRFLOW_MASKER = AirflowMaskerShim()


_TASK_TOKEN_ANY_FORM = re.compile(_TASK_TOKEN_SHAPE_PATTERN)


def redact_text(text: str) -> str:
    """Return ``text`` with task tokens, security tokens and signatures in URL query strings, and
    anything shaped like a task token, replaced by ``***`` (SDK network errors quote the whole
    request URL)."""
    text = _SENSITIVE_QUERY.sub(lambda m: m.group("key") + "***", text)
    return _TASK_TOKEN_ANY_FORM.sub("***", text)


def redact_value(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """``value`` (strings inside dicts, lists and tuples too) with each of ``secrets`` and
    everything :func:`redact_text` redacts replaced by ``***``; other values unchanged."""
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "***")
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, secrets) for v in value)
    return value


def scrub_exception_chain(error: BaseException, secrets: tuple[str, ...] = ()) -> BaseException:
    """Redact, in place, the text of ``error`` and of every exception it carries (``__cause__``,
    ``__context__``, the SDKs' ``inner_exception`` and ``reason``), and return it.

    Our errors are raised ``from`` the SDK's, and Airflow logs a task's failure with its whole
    chain. The SDKs' network errors repeat the request URL, task token and signature included;
    a secrets masker does not always stand between them and a log line (LocalExecutor echoes
    task log lines to the scheduler's output unmasked). Keep the chain, lose the secrets.
    """

    def clean(value: Any) -> Any:
        return redact_value(value, secrets)

    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        try:
            current.args = tuple(clean(a) for a in current.args)
        except (AttributeError, TypeError):  # pragma: no cover - an exception refusing new args
            pass
        for name in ("message", "url", "data"):
            value = getattr(current, name, None)
            if isinstance(value, (str, dict)):
                try:
                    setattr(current, name, clean(value))
                except (AttributeError, TypeError):  # pragma: no cover - a read-only attribute
                    pass
        for name in ("__cause__", "__context__", "inner_exception", "reason"):
            linked = getattr(current, name, None)
            if isinstance(linked, BaseException):
                pending.append(linked)
        pending.extend(a for a in current.args if isinstance(a, BaseException))
    return error

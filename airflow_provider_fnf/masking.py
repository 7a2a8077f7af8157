"""Keep secrets and task tokens out of log lines.

Access key secrets, STS security tokens and Serverless Workflow task tokens are registered with
Airflow's secrets masker before the provider uses them, so any log line (ours, the SDKs', a
traceback) shows ``***`` instead. Task tokens also travel URL-encoded in request URLs, and an SDK
network error repeats that URL: the encoded forms are registered too, and :func:`redact_text`
strips credentials and tokens from SDK messages before they go into our own exception messages.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

try:  # Airflow 3.1+
    from airflow.sdk.log import mask_secret as _airflow_mask_secret
except ImportError:  # pragma: no cover - Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import (  # type: ignore[no-redef]
        mask_secret as _airflow_mask_secret,
    )

__all__ = ["mask_secret", "mask_task_token", "redact_text"]

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


def redact_text(text: str) -> str:
    """Return ``text`` with task tokens, security tokens and signatures in URL query strings
    replaced by ``***`` (SDK network errors quote the whole request URL)."""
    return _SENSITIVE_QUERY.sub(lambda m: m.group("key") + "***", text)

"""Task tokens never reach a log line, and masking them in a long-lived triggerer stays cheap."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import quote, quote_plus

from airflow.sdk._shared.secrets_masker import _secrets_masker, redact

from airflow_provider_fnf.masking import mask_task_token_by_shape


def _token(execution: str) -> str:
    raw = f"v1#flow#{execution}#7#".encode() + secrets.token_bytes(24)
    return base64.b64encode(raw).decode()


def test_tokens_of_the_documented_shape_are_masked_raw_and_url_encoded():
    token = _token("exec-1")
    assert mask_task_token_by_shape(token) == token
    line = f"fired {{'task_token': '{token}'}} url ?TaskToken={quote(token, safe='')}&x={quote_plus(token)}"
    redacted = redact(line)
    for form in (token, quote(token, safe=""), quote_plus(token)):
        assert form not in redacted


def test_masking_many_tokens_does_not_grow_the_masker():
    mask_task_token_by_shape(_token("warm-up"))
    before = len(_secrets_masker().patterns)
    tokens = [_token(f"exec-{i}") for i in range(200)]
    for token in tokens:
        mask_task_token_by_shape(token)
    assert len(_secrets_masker().patterns) == before
    assert tokens[-1] not in redact(f"token {tokens[-1]}")


def test_a_token_of_another_shape_is_still_masked():
    token = "opaque-token-" + secrets.token_hex(16)
    mask_task_token_by_shape(token)
    assert token not in redact(f"token {token}")


def test_airflows_masker_still_has_the_shape_the_shim_relies_on():
    """Fails when an Airflow release changes its private masker: the shim reaches into it."""
    from airflow.sdk.log import mask_secret

    from airflow_provider_fnf.masking import AIRFLOW_MASKER

    assert AIRFLOW_MASKER.shape_problem() is None
    masker = AIRFLOW_MASKER.masker()
    assert masker is _secrets_masker(), "airflow.sdk.log and the masker redact() uses are no longer one"
    assert AIRFLOW_MASKER.add_pattern(r"shim-probe-[0-9]{6}")
    assert redact("value shim-probe-123456 here") == "value *** here"
    # Airflow rebuilds its replacer from `patterns` when it learns a literal secret: ours stays.
    mask_secret("shim-literal-" + secrets.token_hex(8))
    assert r"shim-probe-[0-9]{6}" in masker.patterns
    assert redact("again shim-probe-654321") == "again ***"


def test_a_masker_of_another_shape_falls_back_to_literal_masking(monkeypatch, caplog):
    from types import SimpleNamespace

    from airflow_provider_fnf.masking import AirflowMaskerShim

    shim = AirflowMaskerShim()
    monkeypatch.setattr(
        AirflowMaskerShim, "masker", staticmethod(lambda: SimpleNamespace(patterns=[], replacer=None))
    )
    assert shim.shape_problem() == "the masker's patterns are not a set of strings (got list)"
    assert shim.add_pattern("x+") is False
    assert shim.add_pattern("y+") is False
    assert caplog.text.count("Airflow's secrets masker changed") == 1

"""Unit tests of the connection credentials' own logic: the role settings a connection gives (and
the errors for bad ones), the default session name, and when a RAM role's session is renewed.

Assuming roles for real, through alibabacloud-credentials and the emulator's STS, is in
tests/integration/credentials/."""

from __future__ import annotations

import json
import logging
import threading
from types import SimpleNamespace

import pytest

from airflow_provider_fnf import credentials as credentials_module
from airflow_provider_fnf.credentials import (
    DEFAULT_SESSION_DURATION_SECONDS,
    REFRESH_MARGIN_MAX_SECONDS,
    AlibabaCloudCredentials,
    RAMRoleCredentialSource,
    RAMRoleSettings,
    assume_role_error,
    credential_source,
    default_role_session_name,
    role_from_connection,
)
from airflow_provider_fnf.exceptions import FnFConfigurationError, STSAssumeRoleError
from airflow_provider_fnf.limits import STS_MAX_SESSION_DURATION_SECONDS, STS_MIN_SESSION_DURATION_SECONDS

CONN_ID = "mns_unit"
ROLE = "acs:ram::1234567890123456:role/airflow-worker"


@pytest.fixture(autouse=True)
def outside_a_task(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_TASK_ID", raising=False)


# --- what a connection says ------------------------------------------------------------------
def test_a_connection_without_role_arn_assumes_no_role():
    assert role_from_connection(CONN_ID, {"endpoint": "http://h:1"}) is None


def test_role_settings_and_their_defaults():
    role = role_from_connection(
        CONN_ID,
        {
            "role_arn": ROLE,
            "external_id": "abc-123",
            "session_duration": "1800",
            "sts_endpoint": "https://sts-vpc.cn-hangzhou.aliyuncs.com",
            "sts_region": "cn-hangzhou",
        },
    )
    assert role == RAMRoleSettings(
        role_arn=ROLE,
        role_session_name=f"airflow-{CONN_ID}",
        session_duration=1800,
        external_id="abc-123",
        sts_endpoint="sts-vpc.cn-hangzhou.aliyuncs.com",
        sts_region="cn-hangzhou",
    )
    assert (
        role_from_connection(CONN_ID, {"role_arn": ROLE}).session_duration == DEFAULT_SESSION_DURATION_SECONDS
    )


def test_the_policy_is_sent_compact_with_spaces_and_tildes_escaped():
    document = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "mns:*", "Resource": "a b~c"}]}
    for given in (document, json.dumps(document, indent=2)):
        policy = role_from_connection(CONN_ID, {"role_arn": ROLE, "policy": given}).policy
        assert " " not in policy and "~" not in policy and "\n" not in policy
        assert json.loads(policy) == document


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        ({"external_id": "x1"}, "external_id", "no role_arn"),
        ({"role_arn": "arn:aws:iam::1:role/x"}, "role_arn", "acs:ram::<account id>:role/<role name>"),
        ({"role_arn": ROLE, "role_session_name": "has space"}, "role_session_name", "2..64 characters"),
        ({"role_arn": ROLE, "role_session_name": "x" * 65}, "role_session_name", "2..64 characters"),
        ({"role_arn": ROLE, "external_id": "x"}, "external_id", "2..1224 characters"),
        (
            {"role_arn": ROLE, "session_duration": STS_MIN_SESSION_DURATION_SECONDS - 1},
            "session_duration",
            "from 900 to 43200",
        ),
        (
            {"role_arn": ROLE, "session_duration": STS_MAX_SESSION_DURATION_SECONDS + 1},
            "session_duration",
            "from 900 to 43200",
        ),
        ({"role_arn": ROLE, "session_duration": "an hour"}, "session_duration", "whole number of seconds"),
        ({"role_arn": ROLE, "policy": "{not json"}, "policy", "is not JSON"),
        ({"role_arn": ROLE, "policy": {"Version": "1"}}, "policy", '"Statement"'),
        (
            {"role_arn": ROLE, "policy": {"Statement": [{"Resource": "r" * 1100}]}},
            "policy",
            "over STS's 1024",
        ),
        ({"role_arn": ROLE, "sts_endpoint": "http://127.0.0.1:9913"}, "sts_endpoint", "HTTPS only"),
        ({"role_arn": ROLE, "sts_endpoint": "https://host/path"}, "sts_endpoint", "host[:port]"),
    ],
)
def test_bad_role_settings_name_the_connection_and_the_field(extra, field, says):
    with pytest.raises(FnFConfigurationError) as info:
        role_from_connection(CONN_ID, extra)
    text = str(info.value)
    assert CONN_ID in text and field in text and says in text
    assert info.value.conn_id == CONN_ID


def test_the_default_session_name_names_the_task_when_there_is_one(monkeypatch):
    assert default_role_session_name("mns_default") == "airflow-mns_default"
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "my dag/with:odd chars")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "report" + "x" * 80)
    name = default_role_session_name("mns_default")
    assert name.startswith("airflow-my-dag-with-odd-chars-report") and len(name) == 64


def test_settings_with_the_same_values_share_one_source_and_one_sts_session(monkeypatch):
    monkeypatch.setattr(credentials_module, "_sources", credentials_module.collections.OrderedDict())
    pair = AlibabaCloudCredentials("id", "secret")
    role = RAMRoleSettings(ROLE, "s1")
    first = credential_source(CONN_ID, pair, role)
    assert (
        credential_source(CONN_ID, AlibabaCloudCredentials("id", "secret"), RAMRoleSettings(ROLE, "s1"))
        is first
    )
    assert credential_source(CONN_ID, pair, RAMRoleSettings(ROLE, "s2")) is not first
    assert credential_source(CONN_ID, pair, None) is not first


# --- when a session is renewed -----------------------------------------------------------------
class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


class FakeRoleProvider:
    """What RamRoleArnCredentialsProvider returns, sessions of ``lifetime`` seconds from the clock."""

    made = 0

    def __init__(self, clock: Clock, lifetime: float, failures: list[Exception]) -> None:
        self.clock, self.lifetime, self.failures = clock, lifetime, failures
        self.calls = 0

    def get_credentials(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        FakeRoleProvider.made += 1
        n = FakeRoleProvider.made
        return SimpleNamespace(
            get_access_key_id=lambda: f"STS.key-{n}",
            get_access_key_secret=lambda: f"unit-role-secret-{n}",
            get_security_token=lambda: f"unit-role-token-{n}",
            get_expiration=lambda: int(self.clock.now + self.lifetime),
            get_provider_name=lambda: "ram_role_arn/static_ak",
        )


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(credentials_module, "time", clock)
    return clock


def role_source(monkeypatch, clock: Clock, lifetime: float, failures: list[Exception] | None = None):
    providers: list[FakeRoleProvider] = []

    def new_provider(self):
        providers.append(FakeRoleProvider(clock, lifetime, failures if failures is not None else []))
        return providers[-1]

    monkeypatch.setattr(RAMRoleCredentialSource, "_new_provider", new_provider)
    source = RAMRoleCredentialSource(
        CONN_ID, AlibabaCloudCredentials("id", "secret"), RAMRoleSettings(ROLE, "s")
    )
    return source, providers


def test_a_session_is_kept_until_a_quarter_of_it_remains_then_renewed(monkeypatch, clock):
    source, providers = role_source(monkeypatch, clock, lifetime=3600)
    first = source.get()
    clock.now += 3600 - REFRESH_MARGIN_MAX_SECONDS - 1  # at most 5 minutes before the end
    assert source.get() is first
    clock.now += 2
    second = source.get()
    assert second.access_key_id != first.access_key_id and second.generation == first.generation + 1
    assert providers[0].calls == 2

    source, _ = role_source(monkeypatch, clock, lifetime=8)  # short sessions: a quarter of them
    short = source.get()
    clock.now += 5.9
    assert source.get() is short
    clock.now += 0.2
    assert source.get() is not short


def test_a_failed_renewal_keeps_the_valid_credentials_and_tries_again_later(monkeypatch, clock, caplog):
    failures: list[Exception] = []
    source, providers = role_source(monkeypatch, clock, lifetime=3600, failures=failures)
    first = source.get()
    clock.now += 3400
    failures.append(
        RuntimeError("error refreshing credentials from ram_role_arn, http_code: 503, result: {}")
    )
    with caplog.at_level(logging.WARNING):
        assert source.get() is first  # still valid for 200 s
    assert "stay valid for 200 s" in caplog.text and ROLE in caplog.text and CONN_ID in caplog.text
    assert source.get() is first and providers[0].calls == 2  # no retry within the pause
    clock.now += 6
    assert source.get() is not first


def test_once_expired_a_failed_renewal_raises_an_error_naming_connection_and_role(monkeypatch, clock):
    source, _ = role_source(monkeypatch, clock, lifetime=900, failures=[])
    source.get()
    clock.now += 901
    source._provider.failures.append(
        RuntimeError(
            'error refreshing credentials from ram_role_arn, http_code: 404, result: {"Code": "EntityNotExist.Role", "Message": "gone"}'
        )
    )
    with pytest.raises(STSAssumeRoleError) as info:
        source.get()
    assert (info.value.code, info.value.status, info.value.resource) == ("EntityNotExist.Role", 404, ROLE)


def test_refresh_after_an_expired_answer_renews_once_for_all_threads(monkeypatch, clock):
    source, providers = role_source(monkeypatch, clock, lifetime=3600)
    stale = source.get()
    results = []
    threads = [threading.Thread(target=lambda: results.append(source.refresh(stale))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8
    renewed = source.get()
    assert renewed.access_key_id != stale.access_key_id
    assert sum(p.calls for p in providers) == 2  # the first session, and one renewal


def test_refresh_builds_a_new_provider_when_the_cached_one_hands_back_the_refused_credentials(
    monkeypatch, clock
):
    source, providers = role_source(monkeypatch, clock, lifetime=3600)
    stale = source.get()

    def cached():  # the library's cache: not stale yet by its own clock
        providers[0].calls += 1
        return SimpleNamespace(
            get_access_key_id=lambda: stale.access_key_id,
            get_access_key_secret=lambda: stale.access_key_secret,
            get_security_token=lambda: stale.security_token,
            get_expiration=lambda: stale.expiration,
            get_provider_name=lambda: "ram_role_arn/static_ak",
        )

    providers[0].get_credentials = cached
    assert source.refresh(stale) is True
    assert len(providers) == 2 and source.get().access_key_id != stale.access_key_id


def test_every_secret_and_token_a_renewal_brings_is_masked(monkeypatch, clock):
    from airflow.sdk._shared.secrets_masker import redact

    source, _ = role_source(monkeypatch, clock, lifetime=900)
    seen = []
    for _ in range(3):
        seen.append(source.get())
        clock.now += 900
    for issued in seen:
        line = redact(f"{issued.access_key_secret} {issued.security_token}")
        assert issued.access_key_secret not in line and issued.security_token not in line
    assert "unit-role-secret" not in repr(seen)


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        (
            'http_code: 404, result: {"Code": "EntityNotExist.Role", "Message": "m"}',
            "EntityNotExist.Role",
            "check role_arn",
        ),
        ('http_code: 403, result: {"Code": "NoPermission", "Message": "m"}', "NoPermission", "trust policy"),
        (
            'http_code: 400, result: {"Code": "InvalidParameter.DurationSeconds", "Message": "m"}',
            "InvalidParameter.DurationSeconds",
            "maximum session duration",
        ),
        (
            'http_code: 400, result: {"Code": "InvalidParameter.PolicyGrammar", "Message": "m"}',
            "InvalidParameter.PolicyGrammar",
            "check policy",
        ),
        (
            'http_code: 403, result: {"Code": "InvalidAccessKeyId.NotFound", "Message": "m"}',
            "InvalidAccessKeyId.NotFound",
            "source credentials",
        ),
        (
            "HTTPSConnectionPool(host='sts.aliyuncs.com'): /?SecurityToken=leak&Signature=abc",
            None,
            "reachable",
        ),
    ],
)
def test_assume_role_errors_say_what_to_check_and_never_quote_a_token(text, code, says):
    role = RAMRoleSettings(ROLE, "s")
    error = assume_role_error(
        CONN_ID, role, "AccessKey id", RuntimeError(f"error refreshing credentials from ram_role_arn, {text}")
    )
    assert error.code == code and says in str(error)
    assert CONN_ID in str(error) and ROLE in str(error)
    assert "leak" not in str(error) and "abc" not in str(error)
    assert (error.status is None) == (code is None)

"""The emulator's STS and HTTPS, through the unmodified SDKs and alibabacloud-credentials: AssumeRole
for the configured roles, temporary credentials that MNS and Serverless Workflow accept until they
expire and refuse after with their own codes, STS's errors, and ``--tls`` with a local CA that
SSL_CERT_FILE / REQUESTS_CA_BUNDLE alone make every client trust."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.provider import RamRoleArnCredentialsProvider
from alibabacloud_fnf20190315 import models as fnf_models
from alibabacloud_fnf20190315.client import Client as FnFClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from fnf_emulator.tls import trust_environment
from mns.account import Account
from mns.mns_exception import MNSClientNetworkException, MNSServerException

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROLE = "acs:ram::1234567890123456:role/worker"
SHORT_ROLE = "acs:ram::1234567890123456:role/short"
PARTNER_ROLE = "acs:ram::1234567890123456:role/partner"


@pytest.fixture(scope="module")
def tls_emulator() -> Iterator[Emulator]:
    roles = [
        ROLE,
        f"{SHORT_ROLE},session_seconds=2",
        f"{PARTNER_ROLE},external_id=the-partner-id,trust=partner-key",
    ]
    with Emulator(
        tls=True,
        ram_roles=roles,
        access_keys={DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET, "partner-key": "partner-secret"},
    ) as running:
        yield running


@pytest.fixture
def trusted(tls_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    assert tls_emulator.ca_file is not None
    for name, value in trust_environment(tls_emulator.ca_file).items():
        monkeypatch.setenv(name, value)
    tls_emulator.reset()
    return tls_emulator


def host(endpoint: str) -> str:
    return endpoint.split("://", 1)[1]


def assume(
    emulator: Emulator,
    role: str = ROLE,
    *,
    key: str = DEFAULT_ACCESS_KEY_ID,
    secret: str = DEFAULT_ACCESS_KEY_SECRET,
    **options,
):
    provider = RamRoleArnCredentialsProvider(
        access_key_id=key,
        access_key_secret=secret,
        role_arn=role,
        role_session_name=options.pop("role_session_name", "emulator-test"),
        sts_endpoint=host(emulator.sts_endpoint),
        **options,
    )
    return provider.get_credentials()


def mns_account(emulator: Emulator, credentials) -> Account:
    return Account(
        emulator.mns_endpoint,
        credentials.get_access_key_id(),
        credentials.get_access_key_secret(),
        credentials.get_security_token() or "",
    )


def fnf_client(emulator: Emulator, credentials) -> FnFClient:
    return FnFClient(
        Config(
            endpoint=host(emulator.fnf_endpoint),
            protocol="https",
            region_id="cn-hangzhou",
            access_key_id=credentials.get_access_key_id(),
            access_key_secret=credentials.get_access_key_secret(),
            security_token=credentials.get_security_token(),
        )
    )


def test_every_endpoint_speaks_https_and_the_ca_file_is_all_a_client_needs(trusted):
    for endpoint in (trusted.mns_endpoint, trusted.fnf_endpoint, trusted.sts_endpoint):
        assert endpoint.startswith("https://127.0.0.1:")
        with urllib.request.urlopen(f"{endpoint}/_emulator/health", timeout=10) as response:
            health = json.load(response)
        assert health["ca_file"] == trusted.ca_file and health["sts_endpoint"] == trusted.sts_endpoint
    assert Path(trusted.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_without_the_ca_file_the_sdks_refuse_the_emulator(tls_emulator, monkeypatch):
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    account = Account(tls_emulator.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
    with pytest.raises(MNSClientNetworkException) as info:
        account.list_queue()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{tls_emulator.mns_endpoint}/_emulator/health", timeout=10)


def test_assumed_role_credentials_work_on_both_services_until_they_expire(trusted):
    credentials = assume(trusted, SHORT_ROLE)
    assert credentials.get_access_key_id().startswith("STS.")
    assert credentials.get_expiration() - time.time() <= 2
    account, client = mns_account(trusted, credentials), fnf_client(trusted, credentials)
    account.list_queue()
    assert client.list_flows(fnf_models.ListFlowsRequest()).body.flows == []

    time.sleep(max(0.0, credentials.get_expiration() - time.time()) + 0.2)

    with pytest.raises(MNSServerException) as mns_error:
        account.list_queue()
    assert mns_error.value.type == "SecurityTokenExpired"
    with pytest.raises(ClientException) as fnf_error:
        client.list_flows(fnf_models.ListFlowsRequest())
    assert (fnf_error.value.code, fnf_error.value.status_code) == ("InvalidSecurityToken.Expired", 403)
    assert trusted.identities.signers("sts") == {DEFAULT_ACCESS_KEY_ID: 1}


def test_a_temporary_key_without_its_own_token_is_refused(trusted):
    credentials = assume(trusted)
    other = assume(trusted)

    class Borrowed:  # the first pair with the second pair's token
        def get_access_key_id(self):
            return credentials.get_access_key_id()

        def get_access_key_secret(self):
            return credentials.get_access_key_secret()

        def get_security_token(self):
            return other.get_security_token()

    with pytest.raises(MNSServerException) as info:
        mns_account(trusted, Borrowed()).list_queue()
    assert info.value.type == "AccessDenied"
    no_token = Account(
        trusted.mns_endpoint, credentials.get_access_key_id(), credentials.get_access_key_secret()
    )
    with pytest.raises(MNSServerException) as info:
        no_token.list_queue()
    assert info.value.type == "AccessDenied"
    client = FnFClient(
        Config(
            endpoint=host(trusted.fnf_endpoint),
            protocol="https",
            access_key_id=credentials.get_access_key_id(),
            access_key_secret=credentials.get_access_key_secret(),
            region_id="cn-hangzhou",
        )
    )
    with pytest.raises(ClientException) as fnf_info:
        client.list_flows(fnf_models.ListFlowsRequest())
    assert fnf_info.value.code == "MissingSecurityToken"


@pytest.mark.parametrize(
    ("role", "key", "secret", "options", "status", "code"),
    [
        (
            "acs:ram::1234567890123456:role/nobody",
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_ACCESS_KEY_SECRET,
            {},
            404,
            "EntityNotExist.Role",
        ),
        (PARTNER_ROLE, "partner-key", "partner-secret", {"external_id": "someone-else"}, 403, "NoPermission"),
        (PARTNER_ROLE, "partner-key", "partner-secret", {}, 403, "NoPermission"),
        (
            PARTNER_ROLE,
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_ACCESS_KEY_SECRET,
            {"external_id": "the-partner-id"},
            403,
            "NoPermission",
        ),
        (ROLE, DEFAULT_ACCESS_KEY_ID, "wrong-secret", {}, 403, "SignatureNotMatch"),
        (ROLE, "unknown-key", DEFAULT_ACCESS_KEY_SECRET, {}, 403, "InvalidAccessKeyID"),
        (
            ROLE,
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_ACCESS_KEY_SECRET,
            {"duration_seconds": 7200},
            400,
            "InvalidParameter.DurationSeconds",
        ),
        (
            ROLE,
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_ACCESS_KEY_SECRET,
            {"role_session_name": "x"},
            400,
            "InvalidParameter.RoleSessionName",
        ),
        (
            ROLE,
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_ACCESS_KEY_SECRET,
            {"policy": "not-a-policy"},
            400,
            "InvalidParameter.PolicyGrammar",
        ),
    ],
    ids=[
        "unknown-role",
        "wrong-external-id",
        "no-external-id",
        "untrusted-source",
        "bad-signature",
        "unknown-key",
        "too-long",
        "bad-session-name",
        "bad-policy",
    ],
)
def test_assume_role_errors(trusted, role, key, secret, options, status, code):
    with pytest.raises(CredentialException) as info:
        assume(trusted, role, key=key, secret=secret, **options)
    assert f"http_code: {status}" in str(info.value)
    answer = json.loads(str(info.value).split("result: ", 1)[1])
    assert answer["Code"] == code and answer["RequestId"] and answer["Message"]
    assert trusted.stats.snapshot()["sts"]["AssumeRole"] == {code: 1}


def test_the_right_external_id_from_a_trusted_key_and_a_policy_assume_the_role(trusted):
    # Compact: alibabacloud-credentials signs a space as "+" where the signature method wants %20.
    statement = {"Effect": "Allow", "Action": "mns:*", "Resource": "*"}
    policy = json.dumps({"Version": "1", "Statement": [statement]}, separators=(",", ":"))
    credentials = assume(
        trusted,
        PARTNER_ROLE,
        key="partner-key",
        secret="partner-secret",
        external_id="the-partner-id",
        policy=policy,
    )
    mns_account(trusted, credentials).list_queue()
    [issued] = [
        c
        for c in trusted.identities.issued_credentials()
        if c.access_key_id == credentials.get_access_key_id()
    ]
    assert (issued.role_arn, issued.source_access_key_id, issued.role_session_name) == (
        PARTNER_ROLE,
        "partner-key",
        "emulator-test",
    )


def start_cli(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], dict]:
    ready_file = tmp_path / "ready.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fnf_emulator",
            "--mns-port",
            "0",
            "--fnf-port",
            "0",
            "--ready-file",
            str(ready_file),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the emulator did not get ready: {process.communicate()[0]}")
        time.sleep(0.05)
    return process, json.loads(ready_file.read_text())


def stop_cli(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    return output


def test_the_cli_with_tls_and_roles_writes_the_ca_and_sts_endpoint_and_keeps_both_across_a_restart(
    tmp_path, monkeypatch
):
    data_dir = str(tmp_path / "data")
    process, ready = start_cli(
        tmp_path,
        "--tls",
        "--sts-port",
        "0",
        "--ram-role",
        f"{ROLE},external_id=ext-1",
        "--data-dir",
        data_dir,
    )
    try:
        assert set(ready) == {"mns_endpoint", "fnf_endpoint", "sts_endpoint", "ca_file"}
        assert all(
            ready[k].startswith("https://127.0.0.1:")
            for k in ("mns_endpoint", "fnf_endpoint", "sts_endpoint")
        )
        ca_pem = Path(ready["ca_file"]).read_text()
        for name, value in trust_environment(ready["ca_file"]).items():
            monkeypatch.setenv(name, value)
        provider = RamRoleArnCredentialsProvider(
            access_key_id=DEFAULT_ACCESS_KEY_ID,
            access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
            role_arn=ROLE,
            role_session_name="cli",
            external_id="ext-1",
            sts_endpoint=host(ready["sts_endpoint"]),
        )
        credentials = provider.get_credentials()
        Account(
            ready["mns_endpoint"],
            credentials.get_access_key_id(),
            credentials.get_access_key_secret(),
            credentials.get_security_token(),
        ).list_queue()
    finally:
        output = stop_cli(process)
    assert f"TLS CA certificate:           {ready['ca_file']}" in output
    assert "point SSL_CERT_FILE and REQUESTS_CA_BUNDLE at it" in output  # the log line
    assert f"RAM role:                     {ROLE}" in output
    assert (
        credentials.get_access_key_secret() not in output and credentials.get_security_token() not in output
    )

    process, again = start_cli(
        tmp_path, "--tls", "--sts-port", "0", "--ram-role", ROLE, "--data-dir", data_dir
    )
    try:
        assert Path(again["ca_file"]).read_text() == ca_pem  # clients that trust the CA keep trusting it
        Account(
            again["mns_endpoint"],
            credentials.get_access_key_id(),
            credentials.get_access_key_secret(),
            credentials.get_security_token(),
        ).list_queue()
    finally:
        stop_cli(process)


def test_the_cli_serves_plain_http_and_no_sts_by_default_and_refuses_a_bad_role(tmp_path):
    process, ready = start_cli(tmp_path)
    stop_cli(process)
    assert (
        ready["mns_endpoint"].startswith("http://")
        and ready["sts_endpoint"] is None
        and ready["ca_file"] is None
    )

    result = subprocess.run(
        [sys.executable, "-m", "fnf_emulator", "--ram-role", "arn:aws:iam::1:role/x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "acs:ram::<account id>:role/<name>" in result.stderr

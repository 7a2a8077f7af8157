"""The ``fnf_emulator`` pytest fixture: MNS and Serverless Workflow on free loopback ports.

Installed with the ``fnf-emulator`` distribution (a ``pytest11`` entry point), so a test only
names the fixture::

    def test_my_flow(fnf_emulator):
        client = mns.account.Account(
            fnf_emulator.mns_endpoint, fnf_emulator.access_key_id, fnf_emulator.access_key_secret
        )
        ...

The emulator starts once per test session, in this process, and every test begins with no
queue, message, flow, execution, fault rule, added RAM role or request count (the state of the
test before is reset when the fixture is requested).

``fnf_emulator_tls`` is the same over HTTPS (needs the ``tls`` extra): its endpoints are
``https://``, ``ca_file`` is the local CA's certificate, and ``SSL_CERT_FILE`` and
``REQUESTS_CA_BUNDLE`` point at it for the test, so the SDKs and alibabacloud-credentials trust it.
With either fixture, ``add_ram_role(...)`` gives STS a role to assume for the test::

    def test_assume_role(fnf_emulator_tls):
        role = fnf_emulator_tls.add_ram_role("acs:ram::123456789012:role/worker", session_seconds=3)
        ...  # RamRoleArnCredentialsProvider(..., sts_endpoint=fnf_emulator_tls.sts_host)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fnf_emulator.identities import RamRole
from fnf_emulator.server import Emulator
from fnf_emulator.tls import trust_environment


class EmulatorFixture:
    """What a test sees of the running emulator: endpoints, credentials, faults and counts."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    @property
    def mns_endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: the MNS endpoint, as the MNS SDK's ``Account`` takes it."""
        return self.emulator.mns_endpoint

    @property
    def fnf_endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: the Serverless Workflow endpoint (SDK ``Config.endpoint``
        takes it without the scheme, with ``protocol="http"``)."""
        return self.emulator.fnf_endpoint

    @property
    def sts_endpoint(self) -> str:
        """``http(s)://127.0.0.1:<port>``: STS (AssumeRole)."""
        return self.emulator.sts_endpoint

    @property
    def sts_host(self) -> str:
        """``127.0.0.1:<port>``: STS as alibabacloud-credentials' ``sts_endpoint`` takes it."""
        return self.emulator.sts_endpoint.split("://", 1)[1]

    @property
    def ca_file(self) -> str | None:
        """The CA certificate of the HTTPS endpoints (``fnf_emulator_tls``), else None."""
        return self.emulator.ca_file

    def add_ram_role(
        self,
        arn: str,
        *,
        external_id: str | None = None,
        trusted_access_key_ids: set[str] | frozenset[str] | None = None,
        max_session_duration: int = 3_600,
        session_seconds: int | None = None,
    ) -> RamRole:
        """Let STS callers assume the role ``arn`` for this test (see :class:`~fnf_emulator.identities.RamRole`):
        ``external_id`` must then be given, only ``trusted_access_key_ids`` may assume it (None:
        anyone), and ``session_seconds`` makes its sessions expire that fast."""
        return self.emulator.add_ram_role(
            RamRole(
                arn,
                external_id=external_id,
                trusted_access_key_ids=frozenset(trusted_access_key_ids) if trusted_access_key_ids else None,
                max_session_duration=max_session_duration,
                session_seconds=session_seconds,
            )
        )

    @property
    def access_key_id(self) -> str:
        return next(iter(self.emulator.access_keys))

    @property
    def access_key_secret(self) -> str:
        return self.emulator.access_keys[self.access_key_id]

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (the admin API's fields, :mod:`fnf_emulator.faults`), e.g.
        ``add_fault(service="mns", operation="DeleteMessage", status=500, times=1)``; returns the
        rule as the admin API shows it. A bad field raises ValueError naming it."""
        return self.emulator.faults.add(rule, "mns").to_dict()

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """Requests answered since the test began, by service, operation and outcome:
        ``stats()["fnf"]["ReportTaskSucceeded"]["OK"]``."""
        return self.emulator.stats.snapshot()

    def reset(self) -> None:
        """Drop all state of both services, every fault rule and the request counts."""
        self.emulator.reset()


@pytest.fixture(scope="session")
def _fnf_emulator_session() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def fnf_emulator(_fnf_emulator_session: Emulator) -> EmulatorFixture:
    """The local MNS + Serverless Workflow + STS emulator, reset for this test."""
    _fnf_emulator_session.reset()
    return EmulatorFixture(_fnf_emulator_session)


@pytest.fixture(scope="session")
def _fnf_emulator_tls_session() -> Iterator[Emulator]:
    with Emulator(tls=True) as running:
        yield running


@pytest.fixture
def fnf_emulator_tls(_fnf_emulator_tls_session: Emulator, monkeypatch: pytest.MonkeyPatch) -> EmulatorFixture:
    """The emulator over HTTPS with a local CA, reset for this test; ``SSL_CERT_FILE`` and
    ``REQUESTS_CA_BUNDLE`` point at the CA while the test runs."""
    _fnf_emulator_tls_session.reset()
    assert _fnf_emulator_tls_session.ca_file is not None
    for name, value in trust_environment(_fnf_emulator_tls_session.ca_file).items():
        monkeypatch.setenv(name, value)
    return EmulatorFixture(_fnf_emulator_tls_session)

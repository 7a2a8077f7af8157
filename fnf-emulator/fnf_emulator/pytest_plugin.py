"""The ``fnf_emulator`` pytest fixture: MNS and Serverless Workflow on free loopback ports.

Installed with the ``fnf-emulator`` distribution (a ``pytest11`` entry point), so a test only
names the fixture::

    def test_my_flow(fnf_emulator):
        client = mns.account.Account(
            fnf_emulator.mns_endpoint, fnf_emulator.access_key_id, fnf_emulator.access_key_secret
        )
        ...

The emulator starts once per test session, in this process, and every test begins with no
queue, message, flow, execution, fault rule or request count (the state of the test before is
reset when the fixture is requested).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fnf_emulator.server import Emulator


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
    """The local MNS + Serverless Workflow emulator, reset for this test."""
    _fnf_emulator_session.reset()
    return EmulatorFixture(_fnf_emulator_session)

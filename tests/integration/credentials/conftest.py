"""One emulator over HTTPS for the module, with STS and the roles of
:mod:`credentials_it_support`; every test trusts its CA (SSL_CERT_FILE, REQUESTS_CA_BUNDLE), starts
with fresh credential sources (no STS session left from the test before) and empty services."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

import pytest
from credentials_it_support import ROLES
from fnf_emulator.identities import TemporaryCredentials
from fnf_emulator.server import Emulator
from fnf_emulator.tls import trust_environment

from airflow_provider_fnf import credentials


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(tls=True, ram_roles=ROLES) as running:
        yield running


@pytest.fixture
def emu(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    assert emulator.ca_file is not None
    for name, value in trust_environment(emulator.ca_file).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(credentials, "_sources", collections.OrderedDict())
    emulator.reset()
    yield emulator
    emulator.faults.clear()


@pytest.fixture
def issued(emu: Emulator) -> Callable[[], list[TemporaryCredentials]]:
    """The temporary credentials STS issued since the test began, oldest first."""
    before = {c.access_key_id for c in emu.identities.issued_credentials()}
    return lambda: [c for c in emu.identities.issued_credentials() if c.access_key_id not in before]

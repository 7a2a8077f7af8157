"""The local emulator, in this process, accepting STS credentials too, and connections pointing at
it (AIRFLOW_CONN_* variables)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fnf_emulator.server import Emulator
from hooks_it_support import FNF_CONN_ID, MNS_CONN_ID, STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET, STS_TOKEN

from airflow_provider_fnf.testing import fnf_connection, mns_connection
from tests.support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    admin,
    set_connection,
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(
        access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET, STS_ACCESS_KEY_ID: STS_ACCESS_KEY_SECRET},
        sts_tokens={STS_TOKEN: STS_ACCESS_KEY_ID},
    ) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Iterator[Emulator]:
    """The module's emulator, emptied (state and fault rules) before each test."""
    admin(emulator.mns_endpoint, "POST", "reset")
    yield emulator
    admin(emulator.mns_endpoint, "DELETE", "faults")


@pytest.fixture
def mns_conn_id(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> str:
    return set_connection(monkeypatch, MNS_CONN_ID, **mns_connection(emu.mns_endpoint))


@pytest.fixture
def fnf_conn_id(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> str:
    return set_connection(monkeypatch, FNF_CONN_ID, **fnf_connection(emu.fnf_endpoint))

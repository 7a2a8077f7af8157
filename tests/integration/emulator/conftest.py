"""Fixtures for the emulator's integration tests: a fresh in-process emulator per test and SDK clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.queue import Queue
from mns_emulator_helpers import make_queue


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def account(emulator: Emulator) -> Account:
    return Account(emulator.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


@pytest.fixture
def queue(account: Account) -> Queue:
    return make_queue(account, "jobs", visibilitytimeout=2)

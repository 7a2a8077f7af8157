"""Fixtures every test suite may use: the local emulator of both services, in this process.

Helpers (credentials, connections, admin API, reference flow) are in :mod:`tests.support`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fnf_emulator.server import Emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The emulator of both services on free ports with the default credentials, one per module
    (a directory's conftest may override it, e.g. with STS credentials or one per test)."""
    with Emulator() as running:
        yield running

"""Airflow connections to a local emulator of MNS and Serverless Workflow, for DAG tests.

The emulator is the ``fnf-emulator`` distribution (``pip install 'airflow-provider-fnf[emulator]'``);
this module never imports it: it only turns the emulator's endpoints and credentials into the
``AIRFLOW_CONN_*`` values that point the ``mns`` and ``fnf`` connections at it.

In a test suite, load the fixture with ``pytest_plugins = ["airflow_provider_fnf.testing"]`` in
``conftest.py``::

    def test_my_worker_dag(fnf_emulator, fnf_airflow_connections):
        MNSHook().send_message("jobs", "...")   # mns_default now points at the emulator

Outside pytest, :func:`emulator_connections` sets the variables for a ``with`` block, and
:func:`connection_env` returns them (for a subprocess's environment).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

EMULATOR_ACCESS_KEY_ID = "emulator-access-key-id"
EMULATOR_ACCESS_KEY_SECRET = "emulator-access-key-secret"
"""The AccessKey pair the emulator accepts unless told otherwise."""
EMULATOR_REGION = "cn-hangzhou"
"""The region the ``fnf`` connection names (the emulator answers for any)."""


def mns_connection(
    endpoint: str,
    *,
    access_key_id: str = EMULATOR_ACCESS_KEY_ID,
    access_key_secret: str = EMULATOR_ACCESS_KEY_SECRET,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON fields of an ``mns`` connection to ``endpoint`` (``http(s)://host:port``); ``extra``
    adds connection extras (``security_token``, ``role_arn``, ...)."""
    return {
        "conn_type": "mns",
        "login": access_key_id,
        "password": access_key_secret,
        "extra": {"endpoint": endpoint, **extra},
    }


def fnf_connection(
    endpoint: str,
    *,
    access_key_id: str = EMULATOR_ACCESS_KEY_ID,
    access_key_secret: str = EMULATOR_ACCESS_KEY_SECRET,
    region: str = EMULATOR_REGION,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON fields of an ``fnf`` connection to ``endpoint`` (``http(s)://host:port``)."""
    return {
        "conn_type": "fnf",
        "login": access_key_id,
        "password": access_key_secret,
        "extra": {"endpoint": endpoint, "region": region, **extra},
    }


def connection_env(
    mns_endpoint: str,
    fnf_endpoint: str,
    *,
    mns_conn_id: str = "mns_default",
    fnf_conn_id: str = "fnf_default",
    access_key_id: str = EMULATOR_ACCESS_KEY_ID,
    access_key_secret: str = EMULATOR_ACCESS_KEY_SECRET,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` variables for an ``mns`` and an ``fnf`` connection to the emulator;
    ``extra`` goes into both (e.g. ``{"role_arn": ..., "sts_endpoint": emulator.sts_endpoint}``)."""
    credentials = {"access_key_id": access_key_id, "access_key_secret": access_key_secret}
    more = dict(extra or {})
    return {
        f"AIRFLOW_CONN_{mns_conn_id.upper()}": json.dumps(
            mns_connection(mns_endpoint, **credentials, **more)
        ),
        f"AIRFLOW_CONN_{fnf_conn_id.upper()}": json.dumps(
            fnf_connection(fnf_endpoint, **credentials, **more)
        ),
    }


@contextlib.contextmanager
def emulator_connections(mns_endpoint: str, fnf_endpoint: str, **options: Any) -> Iterator[dict[str, str]]:
    """Set :func:`connection_env`'s variables in ``os.environ`` for the block (restored after)."""
    env = connection_env(mns_endpoint, fnf_endpoint, **options)
    with mock.patch.dict(os.environ, env):
        yield env


try:
    import pytest
except ImportError:  # pragma: no cover - the fixture exists only where pytest does
    pass
else:

    @pytest.fixture
    def fnf_airflow_connections(fnf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
        """Point ``mns_default`` and ``fnf_default`` at the ``fnf_emulator`` fixture's emulator
        (from the ``fnf-emulator`` distribution); returns the variables set."""
        env = connection_env(
            fnf_emulator.mns_endpoint,
            fnf_emulator.fnf_endpoint,
            access_key_id=fnf_emulator.access_key_id,
            access_key_secret=fnf_emulator.access_key_secret,
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

"""Constants of the credentials integration tests: the roles the module's emulator knows, the
connection ids, and a connection to it that assumes a role (shared helpers: :mod:`tests.support`)."""

from __future__ import annotations

from typing import Any

from fnf_emulator.server import Emulator

from airflow_provider_fnf.testing import fnf_connection, mns_connection

ACCOUNT_ID = "1234567890123456"
"""The account that owns the queue and the flow (and the roles)."""
SHORT_SESSION_SECONDS = 3
"""How long a session of :data:`SHORT_ROLE` lasts: expiry is tested in seconds."""
SHORT_ROLE = f"acs:ram::{ACCOUNT_ID}:role/airflow-worker"
"""Sessions of SHORT_SESSION_SECONDS, whatever session_duration asks."""
LONG_ROLE = f"acs:ram::{ACCOUNT_ID}:role/airflow-worker-long"
"""Sessions as long as asked (the emulator can still expire them at once)."""
PARTNER_ROLE = f"acs:ram::{ACCOUNT_ID}:role/airflow-partner"
PARTNER_EXTERNAL_ID = "airflow-prod-7f3a"
"""PARTNER_ROLE's trust policy requires this sts:ExternalId."""
GUARDED_ROLE = f"acs:ram::{ACCOUNT_ID}:role/airflow-guarded"
TRUSTED_ACCESS_KEY_ID = "another-accounts-key"
"""GUARDED_ROLE trusts only this AccessKey, not the connections' source."""
UNKNOWN_ROLE = f"acs:ram::{ACCOUNT_ID}:role/no-such-role"

ROLES = [
    f"{SHORT_ROLE},session_seconds={SHORT_SESSION_SECONDS}",
    LONG_ROLE,
    f"{PARTNER_ROLE},external_id={PARTNER_EXTERNAL_ID}",
    f"{GUARDED_ROLE},trust={TRUSTED_ACCESS_KEY_ID}",
]

MNS_CONN_ID = "mns_role_it"
FNF_CONN_ID = "fnf_role_it"


def role_connection(emulator: Emulator, service: str, role_arn: str, **extra: Any) -> dict[str, Any]:
    """An ``mns`` or ``fnf`` connection to ``emulator`` (HTTPS) whose AccessKey pair assumes
    ``role_arn`` through the emulator's STS."""
    make = mns_connection if service == "mns" else fnf_connection
    endpoint = emulator.mns_endpoint if service == "mns" else emulator.fnf_endpoint
    return make(endpoint, role_arn=role_arn, sts_endpoint=emulator.sts_endpoint, **extra)

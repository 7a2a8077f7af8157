"""Constants for the hooks' integration tests: connection ids and the STS credentials the module's
emulator accepts (shared helpers are in :mod:`tests.support`)."""

from __future__ import annotations

STS_ACCESS_KEY_ID = "STS.hooks-temporary-id"
STS_ACCESS_KEY_SECRET = "hooks-temporary-secret"
STS_TOKEN = "hooks-sts-security-token-0123456789"

MNS_CONN_ID = "mns_hooks_it"
FNF_CONN_ID = "fnf_hooks_it"

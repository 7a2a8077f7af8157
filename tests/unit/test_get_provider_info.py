"""The provider's registration: what Airflow's providers manager reads from get_provider_info()."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

from airflow_provider_fnf import __version__
from airflow_provider_fnf.credentials import CONNECTION_EXTRA_ROLE_FIELDS
from airflow_provider_fnf.get_provider_info import get_provider_info
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook

INFO = get_provider_info()


def test_info_passes_airflows_own_schema():
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(INFO)


def test_package_name_and_version_match_the_distribution():
    distribution = importlib.metadata.distribution("airflow-provider-fnf")
    assert INFO["package-name"] == distribution.metadata["Name"] == "airflow-provider-fnf"
    assert INFO["versions"][0] == __version__ == distribution.version


def test_entry_point_leads_to_this_function():
    [entry_point] = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_fnf.")
    ]
    assert entry_point.load()() == INFO


@pytest.mark.parametrize(
    ("conn_type", "hook_class", "extra_fields"),
    [
        (
            "mns",
            MNSHook,
            {"endpoint", "account_id", "region", "security_token", *CONNECTION_EXTRA_ROLE_FIELDS},
        ),
        (
            "fnf",
            ServerlessWorkflowHook,
            {"endpoint", "region", "protocol", "security_token", "service", *CONNECTION_EXTRA_ROLE_FIELDS},
        ),
    ],
)
def test_connection_types_point_at_the_hooks(conn_type, hook_class, extra_fields):
    [declared] = [c for c in INFO["connection-types"] if c["connection-type"] == conn_type]
    module, _, name = declared["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is hook_class
    assert hook_class.conn_type == conn_type
    assert declared["hook-name"] == hook_class.hook_name
    assert set(declared["conn-fields"]) == extra_fields
    # Secrets are password fields: the STS token here, the AccessKey Secret in the password box.
    assert declared["conn-fields"]["security_token"]["schema"]["format"] == "password"
    assert declared["ui-field-behaviour"]["relabeling"]["password"] == "AccessKey Secret"
    assert "password" not in declared["ui-field-behaviour"]["hidden-fields"]


def _module_paths() -> list[str]:
    paths = []
    for key in ("hooks", "sensors", "operators", "triggers"):
        for entry in INFO.get(key, []):
            paths.extend(entry["python-modules"])
    return paths


@pytest.mark.parametrize("module", _module_paths())
def test_every_registered_module_imports(module):
    importlib.import_module(module)


@pytest.mark.parametrize("class_path", INFO.get("queues", []) + INFO.get("extra-links", []))
def test_every_registered_class_exists(class_path):
    module, _, name = class_path.rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), name), type)

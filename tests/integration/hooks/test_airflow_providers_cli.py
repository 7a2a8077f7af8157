"""`airflow providers list|hooks|behaviours`, run by the venv's own airflow in a fresh AIRFLOW_HOME,
show this provider and its two connection types."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_fnf import __version__

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AIRFLOW = Path(sys.executable).with_name("airflow")


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run the three commands concurrently (each starts a fresh Airflow) and parse their JSON."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    commands = {
        name: [str(AIRFLOW), "providers", name, "-o", "json"] for name in ("list", "hooks", "behaviours")
    }
    processes = {
        name: subprocess.Popen(
            command, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, command in commands.items()
    }
    outputs: dict[str, object] = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, f"airflow providers {name} failed:\n{stderr[-3000:]}"
        # Logging may precede the JSON document on stdout; the document is the last line.
        outputs[name] = json.loads(stdout.strip().splitlines()[-1])
    return outputs


def test_providers_list_shows_the_package(cli_outputs):
    providers = {p["package_name"]: p for p in cli_outputs["list"]}  # type: ignore[union-attr]
    assert "airflow-provider-fnf" in providers
    assert providers["airflow-provider-fnf"]["version"] == __version__


def test_providers_hooks_shows_both_connection_types(cli_outputs):
    hooks = {h["connection_type"]: h for h in cli_outputs["hooks"]}  # type: ignore[union-attr]
    assert hooks["mns"]["class"] == "airflow_provider_fnf.hooks.mns.MNSHook"
    assert hooks["mns"]["conn_id_attribute_name"] == "mns_conn_id"
    assert hooks["fnf"]["class"] == "airflow_provider_fnf.hooks.fnf.ServerlessWorkflowHook"
    assert hooks["fnf"]["conn_id_attribute_name"] == "fnf_conn_id"
    assert {hooks["mns"]["package_name"], hooks["fnf"]["package_name"]} == {"airflow-provider-fnf"}


def test_providers_behaviours_include_both_connection_forms(cli_outputs):
    forms = {b["field_behaviours"] for b in cli_outputs["behaviours"]}  # type: ignore[union-attr]
    assert {"mns", "fnf"} <= forms

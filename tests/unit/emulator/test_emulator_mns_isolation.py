"""The emulator is a distribution of its own: standard library, PyYAML and lark only, no Airflow,
and nothing of the provider."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
from fnf_emulator.server import Emulator
import fnf_emulator.cli
with Emulator():  # start() imports the workflow emulator lazily, when it is there
    pass
print(json.dumps(sorted(set(sys.modules) - before)))
"""

ALLOWED_THIRD_PARTY = {"yaml", "_yaml", "cython_runtime", "lark"}
"""PyYAML, with the runtime of its compiled parser, and lark (CloudFlow's expression grammar)."""


def imported_modules() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_emulator_imports_neither_airflow_nor_the_provider():
    modules = imported_modules()
    assert "fnf_emulator.server" in modules
    assert [m for m in modules if m.startswith("airflow_provider_fnf")] == []
    assert [m for m in modules if m == "airflow" or m.startswith("airflow.")] == []


def test_emulator_needs_only_the_standard_library_pyyaml_and_lark():
    top_level = {m.split(".")[0] for m in imported_modules()}
    foreign = {
        m
        for m in top_level - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - {"fnf_emulator"}
        if not m.startswith("_cython_")
    }
    assert sorted(foreign) == []

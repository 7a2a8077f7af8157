"""The two distributions install apart: the emulator without Airflow, the provider without the
emulator unless its ``emulator`` extra asks for it, and the emulator's pytest fixture works in a
test file of a user's own, outside this repository."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UV = Path(sys.executable).with_name("uv")

pytestmark = pytest.mark.skipif(not UV.exists(), reason="uv is installed by make install")

USER_TEST = textwrap.dedent(
    """
    from mns.account import Account
    from mns.queue import Message, QueueMeta


    def test_a_message_round_trip(fnf_emulator):
        account = Account(fnf_emulator.mns_endpoint, fnf_emulator.access_key_id, fnf_emulator.access_key_secret)
        account.get_queue("jobs").create(QueueMeta())
        account.get_queue("jobs").send_message(Message("hello"))
        received = account.get_queue("jobs").receive_message(wait_seconds=1)
        assert received.message_body == b"hello"  # the SDK base64-decodes bodies by default
        assert fnf_emulator.stats()["mns"]["SendMessage"]["OK"] == 1


    def test_state_is_reset_between_tests(fnf_emulator):
        account = Account(fnf_emulator.mns_endpoint, fnf_emulator.access_key_id, fnf_emulator.access_key_secret)
        assert account.list_queue()[0] == []
    """
)


def uv(*args: str, cwd: Path = REPO, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    result = subprocess.run(
        [str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def fresh_venv(path: Path) -> Path:
    uv("venv", "--quiet", "--python", sys.executable, str(path))
    return path / "bin" / "python"


def test_the_emulator_installs_without_airflow_and_its_fixture_serves_a_users_test(tmp_path: Path):
    python = fresh_venv(tmp_path / "venv")
    uv("pip", "install", "--quiet", "--python", str(python), str(REPO / "fnf-emulator"), "pytest", "aliyun-mns-sdk")

    installed = uv("pip", "list", "--python", str(python)).lower()
    assert "fnf-emulator" in installed
    assert "apache-airflow" not in installed
    assert "airflow-provider-fnf" not in installed

    help_text = subprocess.run(
        [str(python.with_name("fnf-emulator")), "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "--mns-port" in help_text.stdout

    project = tmp_path / "user-project"
    project.mkdir()
    (project / "test_my_queue.py").write_text(USER_TEST)
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


@pytest.mark.parametrize(("target", "brings_emulator"), [(".", False), (".[emulator]", True)])
def test_the_provider_brings_the_emulator_only_with_its_extra(tmp_path: Path, target: str, brings_emulator: bool):
    python = fresh_venv(tmp_path / "venv")
    plan = uv("pip", "install", "--dry-run", "--python", str(python), target)
    assert " + airflow-provider-fnf" in plan
    assert (" + fnf-emulator" in plan) is brings_emulator

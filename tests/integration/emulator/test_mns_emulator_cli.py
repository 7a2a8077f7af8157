"""The command line: start, ready file, requests through the SDK, clean stop on SIGTERM and SIGINT, restart."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from mns.account import Account
from mns.queue import Message
from mns_emulator_helpers import make_queue

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def start(ready_file: Path, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "fnf_emulator",
        "--mns-port",
        "0",
        "--fnf-port",
        "0",
        "--ready-file",
        str(ready_file),
        *extra,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_ready(process: subprocess.Popen[str], ready_file: Path) -> dict[str, str | None]:
    deadline = time.monotonic() + 30
    while not ready_file.exists():
        if process.poll() is not None:
            raise AssertionError(
                f"the emulator exited early: {process.stdout.read() if process.stdout else ''}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the emulator did not write its ready file within 30 s")
        time.sleep(0.05)
    endpoints = json.loads(ready_file.read_text())
    assert set(endpoints) == {"mns_endpoint", "fnf_endpoint", "sts_endpoint", "ca_file"}
    return endpoints


def stop(process: subprocess.Popen[str], signum: int) -> str:
    process.send_signal(signum)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    return output


def test_cli_serves_the_sdk_and_stops_cleanly_keeping_its_data(tmp_path: Path):
    ready_file = tmp_path / "ready.json"
    data_dir = tmp_path / "data"
    process = start(ready_file, "--data-dir", str(data_dir), "--log-level", "DEBUG")
    try:
        endpoints = wait_ready(process, ready_file)
        mns_endpoint, fnf_endpoint = endpoints["mns_endpoint"], endpoints["fnf_endpoint"]
        assert mns_endpoint and mns_endpoint.startswith("http://127.0.0.1:")
        assert fnf_endpoint and fnf_endpoint.startswith("http://127.0.0.1:") and fnf_endpoint != mns_endpoint
        with urllib.request.urlopen(f"{fnf_endpoint}/_emulator/health", timeout=10) as response:
            assert json.load(response)["service"] == "fnf"  # both services listen in the one process
        account = Account(mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
        queue = make_queue(account, "cli")
        sent = queue.send_message(Message("survives the restart"))
    finally:
        output = stop(process, signal.SIGTERM)
    assert not ready_file.exists()
    assert mns_endpoint in output
    assert DEFAULT_ACCESS_KEY_ID in output and DEFAULT_ACCESS_KEY_SECRET in output  # the documented defaults
    assert "CreateQueue PUT /queues/cli -> 201" in output  # one debug line per request

    process = start(ready_file, "--data-dir", str(data_dir))
    try:
        endpoints = wait_ready(process, ready_file)
        account = Account(str(endpoints["mns_endpoint"]), DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
        queue = account.get_queue("cli")
        queue.set_encoding(False)
        received = queue.receive_message(0)
        assert (received.message_id, received.message_body) == (sent.message_id, "survives the restart")
    finally:
        stop(process, signal.SIGINT)


def test_cli_custom_credentials_are_not_printed(tmp_path: Path):
    ready_file = tmp_path / "ready.json"
    process = start(ready_file, "--access-key-id", "my-id", "--access-key-secret", "my-very-secret-value")
    try:
        endpoints = wait_ready(process, ready_file)
        account = Account(str(endpoints["mns_endpoint"]), "my-id", "my-very-secret-value")
        make_queue(account, "custom").send_message(Message("x"))
    finally:
        output = stop(process, signal.SIGTERM)
    assert "my-id" in output
    assert "my-very-secret-value" not in output


def test_cli_reports_a_busy_port(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "fnf_emulator",
                "--mns-port",
                str(port),
                "--fnf-port",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr

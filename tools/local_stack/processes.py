"""Child processes of the local stack: each in a session of its own, with its output in a log
file, stopped as a whole session (SIGTERM, then SIGKILL), and a reaper that kills them if the
parent dies without stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

Echo = Callable[[str], None]


class StackError(RuntimeError):
    """A part of the local stack did not come up, or stopped answering."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# --- processes -------------------------------------------------------------------------------
def session_members(sid: int) -> list[int]:
    """Pids of every live process in session ``sid`` (a child started with ``start_new_session``)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after "(comm)": state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _signal_session(sid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for pid in session_members(sid):  # members that moved to a process group of their own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


_REAPER = r"""
import os, signal, sys, time

def members(sid):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as stat:
                if entry.isdigit() and int(stat.read().rsplit(")", 1)[1].split()[3]) == sid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return found

sids = []
for line in sys.stdin:    # one session id per line; "done" = the parent stopped them itself
    if line.strip() == "done":
        sys.exit(0)
    sids.append(int(line))
# stdin closed without "done": the parent died without stopping its children
for sig in (signal.SIGTERM, signal.SIGKILL):
    for sid in sids:
        for pid in [sid] + members(sid):
            try:
                os.killpg(pid, sig) if pid == sid else os.kill(pid, sig)
            except OSError:
                pass
    time.sleep(10)
"""


class ManagedProcess:
    """A child process in a session of its own, its output in a log file."""

    def __init__(self, name: str, argv: list[str], *, env: Mapping[str, str], cwd: Path, log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # closed in stop()
        self.popen = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_until(
        self, ready: Callable[[], bool], *, what: str, timeout: float, interval: float = 0.2
    ) -> None:
        """Poll ``ready()`` until it holds; fail early, with the log's tail, if the process exits."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive():
                raise StackError(f"{self.name} exited; {self.log_path} ends with:\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} did not {what} within {timeout:.0f} s")
            time.sleep(interval)

    def stop(self, echo: Echo, grace_seconds: float = 25.0) -> None:
        """SIGTERM the whole session, wait, SIGKILL what is left; returns when nothing is left."""
        sid = self.pid
        if self.alive() or session_members(sid):
            echo(f"Stopping {self.name} (pid {sid})")
            _signal_session(sid, signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while time.monotonic() < deadline:
                self.popen.poll()
                if not session_members(sid):
                    break
                time.sleep(0.2)
            else:
                echo(f"{self.name} did not stop within {grace_seconds:.0f} s: killing it")
                _signal_session(sid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while session_members(sid) and time.monotonic() < deadline:
                    self.popen.poll()
                    time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()

    def kill(self, echo: Echo) -> None:
        """SIGKILL the whole session at once, as a crash or an OOM kill would; returns when nothing
        is left of it."""
        sid = self.pid
        echo(f"Killing {self.name} (pid {sid}) with SIGKILL")
        _signal_session(sid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while session_members(sid) and time.monotonic() < deadline:
            self.popen.poll()
            time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()


class Reaper:
    """A small process that kills the sessions it was told about if this process dies first."""

    def __init__(self) -> None:
        self._popen: subprocess.Popen[bytes] | None = None

    def watch(self, process: ManagedProcess) -> None:
        if self._popen is None:
            self._popen = subprocess.Popen(
                [sys.executable, "-c", _REAPER],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert self._popen.stdin is not None
        self._popen.stdin.write(f"{process.pid}\n".encode())
        self._popen.stdin.flush()

    def release(self) -> None:
        """Everything watched was stopped: the reaper exits without killing anything."""
        if self._popen is None:
            return
        with contextlib.suppress(Exception):
            assert self._popen.stdin is not None
            self._popen.stdin.write(b"done\n")
            self._popen.stdin.close()
        with contextlib.suppress(Exception):
            self._popen.wait(timeout=10)
        self._popen = None


def wait_http(url: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise StackError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)

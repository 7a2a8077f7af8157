"""What the benchmarks share: the emulator (in this process or as a child), connections, statistics."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_fnf.testing import emulator_connections

REGION = "cn-hangzhou"

# "mns ReceiveMessage GET /queues/q/messages -> 204 in 0.4 ms": the emulator's DEBUG line per request.
_REQUEST_LINE = re.compile(r" (mns|fnf) (\w+) [A-Z]+ \S+ -> (\d+) in ")


@contextlib.contextmanager
def connections(mns_endpoint: str, fnf_endpoint: str) -> Iterator[None]:
    """Point ``mns_default`` and ``fnf_default`` at the emulator for the duration."""
    with emulator_connections(mns_endpoint, fnf_endpoint):
        yield


@dataclass
class EmulatorProcess:
    """The emulator as its own process (``python -m fnf_emulator``), so that what
    this process spends is the client side alone. With ``debug`` it logs one line per request,
    which :meth:`request_counts` reads."""

    fnf_throttle: bool = False
    debug: bool = False
    extra_args: Sequence[str] = ()
    mns_endpoint: str = ""
    fnf_endpoint: str = ""
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="bench-emulator-", suffix=".log")[1])
    )
    _popen: subprocess.Popen[bytes] | None = None
    _ready_dir: Path | None = None

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        self._ready_dir = Path(tempfile.mkdtemp(prefix="bench-emulator-"))
        ready = self._ready_dir / "ready.json"
        argv = [
            sys.executable,
            "-m",
            "fnf_emulator",
            "--mns-port",
            "0",
            "--fnf-port",
            "0",
            "--ready-file",
            str(ready),
            "--log-level",
            "DEBUG" if self.debug else "WARNING",
            *(["--fnf-throttle"] if self.fnf_throttle else []),
            *self.extra_args,
        ]
        log = open(self.log_path, "wb")
        self._popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self._popen.poll() is not None:
                raise RuntimeError(f"the emulator exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start within {timeout:.0f} s")
            time.sleep(0.05)
        endpoints = json.loads(ready.read_text())
        self.mns_endpoint, self.fnf_endpoint = endpoints["mns_endpoint"], endpoints["fnf_endpoint"]
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process used so far (from /proc)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def request_counts(self) -> dict[str, int]:
        """Requests served so far, by ``service operation status`` (needs ``debug``)."""
        counts: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = _REQUEST_LINE.search(line)
            if match:
                key = f"{match.group(1)} {match.group(2)} {match.group(3)}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def stop(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        with contextlib.suppress(OSError):
            self.log_path.unlink()
        if self._ready_dir is not None:
            shutil.rmtree(self._ready_dir, ignore_errors=True)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)

"""A local stack for the examples: the MNS + Serverless Workflow emulator and an embedded Airflow.

``LocalStack`` starts, as child processes in their own sessions,

* the emulator: ``python -m airflow_provider_fnf.emulator --mns-port 0 --fnf-port 0 ...``;
* ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer; LocalExecutor on
  SQLite) with a private ``AIRFLOW_HOME``, the example DAGs of this folder's parent, and the
  ``mns_default`` / ``fnf_default`` connections pointed at the emulator;

waits until both answer (printing progress, Airflow needs tens of seconds), and stops
everything it started, process group by process group (SIGTERM, then SIGKILL), even when
starting fails half way. A small reaper process kills both sessions if this process dies
without cleaning up (``kill -9``, a crashed test run).

Used by ``make demo`` (``demo.py``) and by the end-to-end tests (``tests/e2e/conftest.py``)::

    with LocalStack(work_dir) as stack:
        stack.api.wait_for_dags(["fnf_reference_worker"])
        run = stack.api.trigger_dag_run("fnf_start_flow_and_wait", conf={...})
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

DAGS_FOLDER = Path(__file__).resolve().parent.parent
"""``dags_examples/``: the example DAGs the embedded Airflow runs."""

ACCESS_KEY_ID = "emulator-access-key-id"
ACCESS_KEY_SECRET = "emulator-access-key-secret"
REGION = "cn-hangzhou"
AIRFLOW_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
WORK_DIR_MARKER = ".fnf-local-stack"
"""Written into every work directory: only such a directory may be wiped for a fresh start."""

Echo = Callable[[str], None]


class StackError(RuntimeError):
    """A part of the local stack did not come up, or stopped answering."""


def _default_echo(line: str) -> None:
    print(line, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
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


# --- Airflow REST client ---------------------------------------------------------------------
class AirflowAPIError(StackError):
    def __init__(self, method: str, url: str, status: int, body: str):
        super().__init__(f"{method} {url} answered HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class AirflowClient:
    """A small client of Airflow 3's REST API (``/api/v2``) with a bearer token from ``/auth/token``."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._token: str | None = None

    # transport
    def _send(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            if error.code == 401 and auth and self._token is not None:
                self._token = None  # expired: fetch a new one, once
                return self._send(method, path, body, auth=auth)
            raise AirflowAPIError(method, url, error.code, text) from error
        return json.loads(payload) if payload else None

    def token(self) -> str:
        if self._token is None:
            answer = self._send(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = answer["access_token"]
        return self._token

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        return self._send("GET", path + (f"?{query}" if query else ""))

    def post(self, path: str, body: Any) -> Any:
        return self._send("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._send("PATCH", path, body)

    # health and DAGs
    def health(self) -> dict[str, Any]:
        return self._send("GET", "/api/v2/monitor/health", auth=False)

    def import_errors(self) -> list[dict[str, Any]]:
        return self.get("/api/v2/importErrors", limit=100)["import_errors"]

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return self.get(f"/api/v2/dags/{_q(dag_id)}")
        except AirflowAPIError as error:
            if error.status == 404:
                return None
            raise

    def wait_for_dags(
        self, dag_ids: Iterable[str], *, timeout: float = 180.0, echo: Echo = _default_echo
    ) -> None:
        """Wait until the dag processor has parsed every DAG id; fail early on an import error."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        last_report = 0.0
        while True:
            missing = sorted(d for d in wanted if self.dag(d) is None)
            if not missing:
                return
            errors = self.import_errors()
            if errors:
                details = "\n".join(
                    f"{e.get('filename')}: {e.get('stack_trace', '')[-1500:]}" for e in errors
                )
                raise StackError(f"Airflow could not import the example DAGs:\n{details}")
            now = time.monotonic()
            if now > deadline:
                raise StackError(f"DAGs {missing} were not parsed within {timeout:.0f} s")
            if now - last_report > 5:
                echo(f"  waiting for the dag processor to parse {', '.join(missing)} ({now - started:.0f} s)")
                last_report = now
            time.sleep(1)

    # runs
    def trigger_dag_run(
        self, dag_id: str, *, conf: dict[str, Any] | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.post(f"/api/v2/dags/{_q(dag_id)}/dagRuns", body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def dag_runs(self, dag_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns", limit=limit, order_by="-start_date")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """An XCom value as the task pushed it (JSON-safe values come back as they were)."""
        answer = self.get(
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}"
        )
        value = answer.get("value")
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def wait_for_dag_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 120.0,
        states: Iterable[str] = ("success", "failed"),
    ) -> dict[str, Any]:
        final = set(states)
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in final:
                return run
            if time.monotonic() > deadline:
                raise StackError(f"DAG run {dag_id}/{run_id} is still {run['state']} after {timeout:.0f} s")
            time.sleep(1)

    def find_dag_run(
        self, dag_id: str, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 120.0
    ) -> dict[str, Any]:
        """Wait for a run of ``dag_id`` for which ``predicate(run)`` holds (runs carry ``conf``)."""
        deadline = time.monotonic() + timeout
        while True:
            for run in self.dag_runs(dag_id):
                if predicate(run):
                    return run
            if time.monotonic() > deadline:
                raise StackError(f"No matching run of {dag_id} appeared within {timeout:.0f} s")
            time.sleep(1)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


# --- the stack -------------------------------------------------------------------------------
@dataclass
class EmulatorEndpoints:
    mns_endpoint: str
    fnf_endpoint: str

    @property
    def fnf_host_port(self) -> str:
        return self.fnf_endpoint.split("://", 1)[1]

    def console_url(self, flow_name: str, execution_name: str) -> str:
        return f"{self.fnf_endpoint}/console/flows/{_q(flow_name)}/executions/{_q(execution_name)}"


class LocalStack:
    """The emulator and an embedded ``airflow standalone``, started and stopped together.

    :param work_dir: where ``AIRFLOW_HOME``, the emulator's data and all logs go; a new temporary
        directory (removed by :meth:`stop`) when not given.
    :param dags_folder: the DAGs Airflow runs; ``dags_examples/`` by default.
    :param extra_dags_folders: more folders of DAGs to run alongside (test-only DAGs, say).
        Airflow reads a single folder: the stack then gives it ``<work_dir>/dags``, which links to
        ``dags_folder`` and to each of these.
    :param echo: where progress lines go (``print`` by default).
    :param airflow_timeout: seconds to wait for Airflow to report every component healthy.
    :param extra_env: more environment for Airflow (``AIRFLOW__SECTION__KEY`` settings...).
    :param prepare: called with the stack once the emulator is up and before Airflow starts: the
        place to create the queues the example DAGs' watchers poll (a watcher on a queue that
        does not exist fails).
    """

    def __init__(
        self,
        work_dir: str | Path | None = None,
        *,
        dags_folder: str | Path = DAGS_FOLDER,
        extra_dags_folders: Iterable[str | Path] = (),
        echo: Echo = _default_echo,
        airflow_timeout: float = 300.0,
        emulator_timeout: float = 60.0,
        extra_env: Mapping[str, str] | None = None,
        prepare: Callable[[LocalStack], None] | None = None,
    ):
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="fnf-local-stack-")).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.extra_dags_folders = [Path(folder).resolve() for folder in extra_dags_folders]
        self.echo = echo
        self.airflow_timeout = airflow_timeout
        self.emulator_timeout = emulator_timeout
        self.extra_env = dict(extra_env or {})
        self.prepare = prepare
        self.emulator_process: ManagedProcess | None = None
        self.airflow_process: ManagedProcess | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self.endpoints: EmulatorEndpoints | None = None
        self.airflow_port: int | None = None
        self._api: AirflowClient | None = None

    # public view
    @property
    def airflow_home(self) -> Path:
        return self.work_dir / "airflow-home"

    @property
    def airflow_dags_folder(self) -> Path:
        """The folder Airflow reads: ``dags_folder``, or a folder linking to it and the extra ones."""
        return self.work_dir / "dags" if self.extra_dags_folders else self.dags_folder

    @property
    def airflow_url(self) -> str:
        if self.airflow_port is None:
            raise StackError("Airflow is not started")
        return f"http://localhost:{self.airflow_port}"

    @property
    def emulator(self) -> EmulatorEndpoints:
        if self.endpoints is None:
            raise StackError("The emulator is not started")
        return self.endpoints

    @property
    def api(self) -> AirflowClient:
        if self._api is None:
            raise StackError("Airflow is not started")
        return self._api

    @property
    def admin_password(self) -> str:
        return self.api.password

    def mns_hook(self) -> Any:
        """An ``MNSHook`` on the emulator, usable in this process (outside Airflow)."""
        from airflow_provider_fnf.hooks.mns import MNSHook

        with self.connections_in_this_process():
            hook = MNSHook("mns_default")
            _ = hook.settings  # reads the connection now, while the variable is set
        return hook

    def fnf_hook(self) -> Any:
        """A ``ServerlessWorkflowHook`` on the emulator, usable in this process (outside Airflow)."""
        from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

        with self.connections_in_this_process():
            hook = ServerlessWorkflowHook("fnf_default")
            _ = hook.settings
        return hook

    def dag_run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow_url}/dags/{_q(dag_id)}/runs/{_q(run_id)}"

    def connection_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_MNS_DEFAULT`` / ``AIRFLOW_CONN_FNF_DEFAULT`` pointing at the emulator."""
        endpoints = self.emulator
        mns = {
            "conn_type": "mns",
            "login": ACCESS_KEY_ID,
            "password": ACCESS_KEY_SECRET,
            "extra": {"endpoint": endpoints.mns_endpoint},
        }
        fnf = {
            "conn_type": "fnf",
            "login": ACCESS_KEY_ID,
            "password": ACCESS_KEY_SECRET,
            "extra": {"endpoint": endpoints.fnf_host_port, "protocol": "http", "region": REGION},
        }
        return {"AIRFLOW_CONN_MNS_DEFAULT": json.dumps(mns), "AIRFLOW_CONN_FNF_DEFAULT": json.dumps(fnf)}

    @contextlib.contextmanager
    def connections_in_this_process(self) -> Iterator[None]:
        """Set the connection variables in ``os.environ`` (for hooks used outside Airflow)."""
        with mock.patch.dict(os.environ, self.connection_env()):  # restores the variables after
            yield

    # lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the emulator, then Airflow; wait for both. Stops what it started on any failure."""
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            (self.work_dir / WORK_DIR_MARKER).write_text("created by dags_examples.local_stack\n")
            self._start_emulator()
            if self.prepare is not None:
                self.prepare(self)
            self._start_airflow()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Airflow and the emulator (whole process sessions); idempotent."""
        for process in (self.airflow_process, self.emulator_process):
            if process is not None:
                try:
                    process.stop(self.echo)
                except Exception as error:  # keep stopping the others
                    self.echo(f"Could not stop {process.name}: {error}")
        self.airflow_process = self.emulator_process = None
        if self._reaper is not None:
            with contextlib.suppress(Exception):
                assert self._reaper.stdin is not None
                self._reaper.stdin.write(b"done\n")
                self._reaper.stdin.close()
            with contextlib.suppress(Exception):
                self._reaper.wait(timeout=10)
            self._reaper = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _watch(self, process: ManagedProcess) -> None:
        """Have the reaper kill this process's session if this process dies without stop()."""
        if self._reaper is None:
            self._reaper = subprocess.Popen(
                [sys.executable, "-c", _REAPER],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert self._reaper.stdin is not None
        self._reaper.stdin.write(f"{process.pid}\n".encode())
        self._reaper.stdin.flush()

    def _start_emulator(self) -> None:
        ready_file = self.work_dir / "emulator-ready.json"
        ready_file.unlink(missing_ok=True)
        data_dir = self.work_dir / "emulator-data"
        data_dir.mkdir(exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "airflow_provider_fnf.emulator",
            "--mns-port",
            "0",
            "--fnf-port",
            "0",
            "--access-key-id",
            ACCESS_KEY_ID,
            "--access-key-secret",
            ACCESS_KEY_SECRET,
            "--ready-file",
            str(ready_file),
            "--data-dir",
            str(data_dir),
        ]
        self.echo("Starting the MNS + Serverless Workflow emulator")
        self.emulator_process = ManagedProcess(
            "emulator", argv, env=os.environ, cwd=self.work_dir, log_path=self.work_dir / "emulator.log"
        )
        self._watch(self.emulator_process)
        deadline = time.monotonic() + self.emulator_timeout
        while True:
            if ready_file.exists():
                try:
                    ready = json.loads(ready_file.read_text())
                    self.endpoints = EmulatorEndpoints(ready["mns_endpoint"], ready["fnf_endpoint"])
                    break
                except (ValueError, KeyError):
                    pass  # being written
            if not self.emulator_process.alive():
                raise StackError(
                    f"The emulator exited with status {self.emulator_process.popen.returncode}; "
                    f"its log ({self.emulator_process.log_path}) ends with:\n"
                    f"{_tail(self.emulator_process.log_path)}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"The emulator did not write {ready_file} within {self.emulator_timeout:.0f} s; log:\n"
                    f"{_tail(self.emulator_process.log_path)}"
                )
            time.sleep(0.1)
        for endpoint in (self.endpoints.mns_endpoint, self.endpoints.fnf_endpoint):
            _wait_http(endpoint + "/_emulator/health", timeout=20)
        self.echo(
            f"  MNS at {self.endpoints.mns_endpoint}, Serverless Workflow at {self.endpoints.fnf_endpoint}"
        )

    def airflow_env(self) -> dict[str, str]:
        """The environment ``airflow standalone`` runs with."""
        assert self.airflow_port is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        repo_root = str(self.dags_folder.parent)
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.airflow_dags_folder),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{self.airflow_port}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}",
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.airflow_url,
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                # standalone runs its components as `airflow ...`: this interpreter's `airflow`
                "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", ""))),
                "PYTHONPATH": os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH")) if p),
            }
        )
        env.update(self.connection_env())
        env.update(self.extra_env)
        return env

    def _link_dags_folders(self) -> None:
        """Fill ``airflow_dags_folder`` with one link per DAG folder (Airflow follows links)."""
        folder = self.airflow_dags_folder
        folder.mkdir(exist_ok=True)
        for entry in folder.iterdir():  # links of an earlier start in this work directory
            entry.unlink()
        for index, source in enumerate((self.dags_folder, *self.extra_dags_folders)):
            if not source.is_dir():
                raise StackError(f"DAG folder {source} does not exist")
            (folder / f"{index}-{source.name}").symlink_to(source, target_is_directory=True)

    def _start_airflow(self) -> None:
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        if self.extra_dags_folders:
            self._link_dags_folders()
        self.airflow_port = free_port()
        self.echo(
            f"Starting Airflow (airflow standalone, AIRFLOW_HOME={self.airflow_home}, port {self.airflow_port})"
        )
        self.airflow_process = ManagedProcess(
            "airflow",
            [sys.executable, "-m", "airflow", "standalone"],
            env=self.airflow_env(),
            cwd=self.work_dir,
            log_path=self.work_dir / "airflow-standalone.log",
        )
        self._watch(self.airflow_process)
        self._wait_for_airflow()

    def _wait_for_airflow(self) -> None:
        assert self.airflow_process is not None
        started = time.monotonic()
        deadline = started + self.airflow_timeout
        last_report = 0.0
        state = "starting"
        while True:
            if not self.airflow_process.alive():
                raise StackError(
                    f"airflow standalone exited with status {self.airflow_process.popen.returncode}; "
                    f"its log ({self.airflow_process.log_path}) ends with:\n{_tail(self.airflow_process.log_path)}"
                )
            try:
                health = AirflowClient(self.airflow_url, "", "", timeout=5).health()
                unhealthy = [
                    c for c in AIRFLOW_COMPONENTS if (health.get(c) or {}).get("status") != "healthy"
                ]
                state = "waiting for " + ", ".join(unhealthy) if unhealthy else "healthy"
                if not unhealthy:
                    break
            except (OSError, StackError, ValueError):
                state = "api-server not answering yet"
            now = time.monotonic()
            if now > deadline:
                raise StackError(
                    f"Airflow was not healthy within {self.airflow_timeout:.0f} s ({state}); "
                    f"log {self.airflow_process.log_path} ends with:\n{_tail(self.airflow_process.log_path)}"
                )
            if now - last_report >= 5:
                self.echo(f"  Airflow: {state} ({now - started:.0f} s)")
                last_report = now
            time.sleep(1)
        password = self._admin_password(deadline)
        self._api = AirflowClient(self.airflow_url, "admin", password)
        self._api.token()
        self.echo(f"  Airflow healthy after {time.monotonic() - started:.0f} s at {self.airflow_url}")

    def _admin_password(self, deadline: float) -> str:
        path = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        while True:
            with contextlib.suppress(OSError, ValueError, KeyError):
                return str(json.loads(path.read_text())["admin"])
            if time.monotonic() > deadline:
                raise StackError(f"Airflow did not write the admin password to {path}")
            time.sleep(0.5)


def _wait_http(url: str, *, timeout: float) -> None:
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

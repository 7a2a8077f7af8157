"""A local stack for the examples: the MNS + Serverless Workflow emulator and an embedded Airflow.

``LocalStack`` starts, as child processes in their own sessions,

* the emulator: ``python -m fnf_emulator --mns-port 0 --fnf-port 0 ...``;
* ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer; LocalExecutor on
  SQLite) with a private ``AIRFLOW_HOME``, the example DAGs of ``dags_examples/``, and the
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

from airflow_provider_fnf import testing
from tools.local_stack.processes import (
    Echo,
    ManagedProcess,
    Reaper,
    StackError,
    free_port,
    tail,
    wait_http,
)
from tools.local_stack.services import PostgresServer, RedisServer
from tools.local_stack.sqlite_settings import SQLITE_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: on the ``PYTHONPATH`` of every Airflow process (``tools``, ``dags_examples``)."""
DAGS_FOLDER = REPO_ROOT / "dags_examples"
"""``dags_examples/``: the example DAGs the embedded Airflow runs."""

ACCESS_KEY_ID = testing.EMULATOR_ACCESS_KEY_ID
ACCESS_KEY_SECRET = testing.EMULATOR_ACCESS_KEY_SECRET
REGION = testing.EMULATOR_REGION
AIRFLOW_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
WORK_DIR_MARKER = ".fnf-local-stack"
"""Written into every work directory: only such a directory may be wiped for a fresh start."""


def _default_echo(line: str) -> None:
    print(line, flush=True)


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

    @property
    def ports(self) -> tuple[int, int]:
        """(MNS port, Serverless Workflow port)."""
        return tuple(int(e.rsplit(":", 1)[1].rstrip("/")) for e in (self.mns_endpoint, self.fnf_endpoint))  # type: ignore[return-value]

    def console_url(self, flow_name: str, execution_name: str) -> str:
        return f"{self.fnf_endpoint}/console/flows/{_q(flow_name)}/executions/{_q(execution_name)}"


EXECUTORS = ("LocalExecutor", "CeleryExecutor")
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class AirflowTopology:
    """How the embedded Airflow runs.

    The default is ``airflow standalone``: api-server, scheduler, dag-processor and triggerer
    under one parent, LocalExecutor on SQLite. With ``standalone=False`` every component is a
    process of its own (``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer``
    x ``triggerers``, ``celery worker`` x ``celery_workers``), so that one of them can be
    restarted or killed alone (:meth:`LocalStack.restart_component`). PostgreSQL and Redis run
    as private instances (``services.py``) when the topology asks for them.
    """

    standalone: bool = True
    executor: str = "LocalExecutor"
    database: str = "sqlite"
    triggerers: int = 1
    celery_workers: int = 0
    parallelism: int = 8

    @classmethod
    def distributed(cls) -> AirflowTopology:
        """CeleryExecutor with Redis and PostgreSQL: two Celery workers and two triggerers."""
        return cls(
            standalone=False, executor="CeleryExecutor", database="postgresql", triggerers=2, celery_workers=2
        )

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.database not in DATABASES:
            raise ValueError(f"database must be one of {DATABASES}, got {self.database!r}")
        celery = self.executor == "CeleryExecutor"
        if self.standalone and (celery or self.database != "sqlite" or self.triggerers != 1):
            raise ValueError(
                "airflow standalone runs LocalExecutor on SQLite with one triggerer: "
                "use standalone=False for other topologies"
            )
        if celery != (self.celery_workers > 0):
            raise ValueError("celery_workers must be > 0 exactly when the executor is CeleryExecutor")
        if celery and self.database == "sqlite":
            raise ValueError("CeleryExecutor needs database='postgresql'")
        if self.triggerers < 1:
            raise ValueError("at least one triggerer is needed")

    @property
    def components(self) -> tuple[str, ...]:
        """Names of the Airflow processes, in start order."""
        if self.standalone:
            return ("standalone",)
        return (
            "api-server",
            "scheduler",
            "dag-processor",
            *(f"triggerer-{i}" for i in range(1, self.triggerers + 1)),
            *(f"celery-worker-{i}" for i in range(1, self.celery_workers + 1)),
        )

    def describe(self) -> str:
        if self.standalone:
            return "airflow standalone, LocalExecutor on SQLite"
        parts = [self.executor, f"on {self.database}", f"{self.triggerers} triggerer(s)"]
        if self.celery_workers:
            parts.append(f"{self.celery_workers} Celery worker(s), Redis broker")
        return ", ".join(parts)


class LocalStack:
    """The emulator and an embedded Airflow, started and stopped together.

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
    :param topology: how Airflow runs (:class:`AirflowTopology`); ``airflow standalone`` by default.
    :param emulator_args: more command-line arguments for the emulator (``--fnf-throttle``...).
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
        topology: AirflowTopology | None = None,
        emulator_args: Iterable[str] = (),
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
        self.topology = topology or AirflowTopology()
        self.emulator_args = list(emulator_args)
        self.emulator_process: ManagedProcess | None = None
        self.airflow_processes: dict[str, ManagedProcess] = {}
        self.started_sessions: list[int] = []
        """Session id of every process the stack started, restarted ones included."""
        self.postgres: PostgresServer | None = None
        self.redis: RedisServer | None = None
        self._reaper = Reaper()
        self.endpoints: EmulatorEndpoints | None = None
        self.airflow_port: int | None = None
        self._log_server_ports: dict[str, int] = {}
        self._jwt_secret = secrets.token_urlsafe(64)
        self._admin_secret = secrets.token_urlsafe(24)
        """The admin user's password, written to the simple auth manager's file before Airflow
        starts, so the ``airflow_api_default`` connection can name it."""
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
    def airflow_process(self) -> ManagedProcess | None:
        """``airflow standalone``, or the api-server of a topology of separate processes."""
        return self.airflow_processes.get("standalone") or self.airflow_processes.get("api-server")

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

    def airflow_log(self, component: str = "") -> Path:
        """The log file of an Airflow process (``standalone``, ``scheduler``, ``triggerer-1``...)."""
        return self.work_dir / f"airflow-{component or self.topology.components[0]}.log"

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
        return testing.connection_env(self.emulator.mns_endpoint, self.emulator.fnf_endpoint)

    @contextlib.contextmanager
    def connections_in_this_process(self) -> Iterator[None]:
        """Set the connection variables in ``os.environ`` (for hooks used outside Airflow)."""
        with testing.emulator_connections(self.emulator.mns_endpoint, self.emulator.fnf_endpoint):
            yield

    # lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the emulator (and PostgreSQL, Redis when the topology needs them), then Airflow;
        wait for all of them. Stops what it started on any failure."""
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            (self.work_dir / WORK_DIR_MARKER).write_text("created by tools.local_stack\n")
            self._start_emulator()
            if self.prepare is not None:
                self.prepare(self)
            self._start_services()
            self._start_airflow()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Airflow, the services and the emulator (whole process sessions); idempotent."""
        processes = [*reversed(self.airflow_processes.values()), self.emulator_process]
        for process in processes:
            if process is not None:
                try:
                    process.stop(self.echo)
                except Exception as error:  # keep stopping the others
                    self.echo(f"Could not stop {process.name}: {error}")
        self.airflow_processes = {}
        self.emulator_process = None
        for service in (self.redis, self.postgres):
            if service is not None:
                try:
                    service.stop()
                except Exception as error:
                    self.echo(f"Could not stop {type(service).__name__}: {error}")
        self.redis = self.postgres = None
        self._reaper.release()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _started(self, process: ManagedProcess) -> ManagedProcess:
        """Have the reaper kill this process's session if this process dies without stop()."""
        self._reaper.watch(process)
        self.started_sessions.append(process.pid)
        return process

    # the emulator
    def _start_emulator(self, ports: tuple[int, int] = (0, 0)) -> None:
        ready_file = self.work_dir / "emulator-ready.json"
        ready_file.unlink(missing_ok=True)
        data_dir = self.work_dir / "emulator-data"
        data_dir.mkdir(exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "fnf_emulator",
            "--mns-port",
            str(ports[0]),
            "--fnf-port",
            str(ports[1]),
            "--access-key-id",
            ACCESS_KEY_ID,
            "--access-key-secret",
            ACCESS_KEY_SECRET,
            "--ready-file",
            str(ready_file),
            "--data-dir",
            str(data_dir),
            *self.emulator_args,
        ]
        self.echo("Starting the MNS + Serverless Workflow emulator")
        self.emulator_process = self._started(
            ManagedProcess(
                "emulator", argv, env=os.environ, cwd=self.work_dir, log_path=self.work_dir / "emulator.log"
            )
        )
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
                    f"{tail(self.emulator_process.log_path)}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"The emulator did not write {ready_file} within {self.emulator_timeout:.0f} s; log:\n"
                    f"{tail(self.emulator_process.log_path)}"
                )
            time.sleep(0.1)
        for endpoint in (self.endpoints.mns_endpoint, self.endpoints.fnf_endpoint):
            wait_http(endpoint + "/_emulator/health", timeout=20)
        self.echo(
            f"  MNS at {self.endpoints.mns_endpoint}, Serverless Workflow at {self.endpoints.fnf_endpoint}"
        )

    def restart_emulator(self, down_seconds: float = 0.0) -> None:
        """Stop the emulator and start it again on the same ports and ``--data-dir``: queues,
        messages, flows and executions survive; fault rules (in memory) do not."""
        if self.emulator_process is None or self.endpoints is None:
            raise StackError("The emulator is not started")
        ports = self.endpoints.ports
        self.emulator_process.stop(self.echo)
        time.sleep(down_seconds)
        self._start_emulator(ports)

    # PostgreSQL and Redis
    def _start_services(self) -> None:
        if self.topology.database == "postgresql":
            self.postgres = PostgresServer(self.work_dir, self.echo)
            self.postgres.start()
            assert self.postgres.process is not None
            self._started(self.postgres.process)
        if self.topology.celery_workers:
            self.redis = RedisServer(self.work_dir, self.echo)
            self.redis.start()
            assert self.redis.process is not None
            self._started(self.redis.process)

    # Airflow
    def airflow_env(self) -> dict[str, str]:
        """The environment every Airflow process runs with."""
        assert self.airflow_port is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        repo_root = str(REPO_ROOT)
        database = (
            self.postgres.url
            if self.postgres is not None
            else f"sqlite:///{self.airflow_home / 'airflow.db'}"
        )
        env.update(
            {
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.airflow_dags_folder),
                "AIRFLOW__CORE__EXECUTOR": self.topology.executor,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": str(self.topology.parallelism),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{self.airflow_port}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__API__PORT": str(self.airflow_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.airflow_url,
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                # log servers on free ports, so that stacks side by side do not collide
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_server_port("worker")),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._log_server_port("trigger")),
                "PYTHONUNBUFFERED": "1",
                # standalone runs its components as `airflow ...`: this interpreter's `airflow`
                "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", ""))),
                "PYTHONPATH": os.pathsep.join(p for p in (repo_root, os.environ.get("PYTHONPATH")) if p),
            }
        )
        if self.redis is not None and self.postgres is not None:
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": self.postgres.celery_result_backend,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(max(1, self.topology.parallelism // 2)),
                }
            )
        if self.postgres is None:
            env.update(SQLITE_ENV)
        env.update(self.connection_env())
        env["AIRFLOW_CONN_AIRFLOW_API_DEFAULT"] = json.dumps(
            {"conn_type": "http", "host": self.airflow_url, "login": "admin", "password": self._admin_secret}
        )
        env.update(self.extra_env)
        return env

    def _log_server_port(self, kind: str) -> int:
        if kind not in self._log_server_ports:
            self._log_server_ports[kind] = free_port()
        return self._log_server_ports[kind]

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

    def _component_argv(self, component: str) -> list[str]:
        airflow = [sys.executable, "-m", "airflow"]
        if component == "standalone":
            return [*airflow, "standalone"]
        if component.startswith("triggerer-"):
            # one log server per machine is enough: the others would fight over its port
            return [*airflow, "triggerer", *(["--skip-serve-logs"] if component != "triggerer-1" else [])]
        if component.startswith("celery-worker-"):
            return [
                *airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"{component}@%h",
                "--without-mingle",
                "--without-gossip",
                *(["--skip-serve-logs"] if component != "celery-worker-1" else []),
            ]
        return [*airflow, component]

    def _start_component(self, component: str) -> None:
        self.airflow_processes[component] = self._started(
            ManagedProcess(
                f"airflow {component}",
                self._component_argv(component),
                env=self.airflow_env(),
                cwd=self.work_dir,
                log_path=self.airflow_log(component),
            )
        )

    def _start_airflow(self) -> None:
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        passwords = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        # The auth manager keeps the users it finds in this file and only adds missing ones.
        known = json.loads(passwords.read_text()) if passwords.exists() else {}
        if "admin" in known:
            self._admin_secret = str(known["admin"])
        else:
            passwords.write_text(json.dumps({**known, "admin": self._admin_secret}) + "\n")
        if self.extra_dags_folders:
            self._link_dags_folders()
        self.airflow_port = free_port()
        self.echo(
            f"Starting Airflow ({self.topology.describe()}; AIRFLOW_HOME={self.airflow_home}, "
            f"port {self.airflow_port})"
        )
        if not self.topology.standalone:
            self._migrate_database()
        for component in self.topology.components:
            self._start_component(component)
        self._wait_for_airflow()

    def _migrate_database(self) -> None:
        log_path = self.work_dir / "airflow-db-migrate.log"
        started = time.monotonic()
        with open(log_path, "wb") as log:
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=self.airflow_env(),
                cwd=self.work_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=self.airflow_timeout,
                check=False,
            )
        if done.returncode:
            raise StackError(
                f"airflow db migrate failed ({done.returncode}); {log_path} ends with:\n{tail(log_path)}"
            )
        self.echo(f"  metadata database migrated in {time.monotonic() - started:.0f} s")

    def restart_component(self, component: str, *, kill: bool = False, timeout: float = 120.0) -> None:
        """Stop one Airflow process (``triggerer-1``, ``scheduler``, ``celery-worker-2``...) the
        way an operator would (SIGTERM, then SIGKILL after a grace period) or, with ``kill``, the
        way a crash does (SIGKILL at once), start it again and wait until Airflow is healthy.
        Only with a topology of separate processes."""
        if component not in self.airflow_processes or self.topology.standalone:
            raise StackError(
                f"No Airflow process {component!r} to restart; the stack runs {sorted(self.airflow_processes)}"
            )
        process = self.airflow_processes[component]
        if kill:
            process.kill(self.echo)
        else:
            process.stop(self.echo)
        self._start_component(component)
        self._wait_for_airflow(timeout=timeout)

    def restart_postgres(self, down_seconds: float = 0.0) -> None:
        """Restart the metadata database (a fast shutdown cuts every connection), same port and
        data; Airflow's processes are left to cope, as they would with a database failover."""
        if self.postgres is None:
            raise StackError("The stack runs no PostgreSQL (topology database is sqlite)")
        self.postgres.restart(down_seconds)
        assert self.postgres.process is not None
        self._started(self.postgres.process)

    def start_exited_components(self, *, timeout: float = 120.0) -> list[str]:
        """Start again every Airflow process that exited (what a supervisor does); wait until
        Airflow is healthy. Returns the components restarted."""
        exited = [c for c, p in self.airflow_processes.items() if not p.alive()]
        for component in exited:
            self.echo(
                f"airflow {component} had exited (status {self.airflow_processes[component].popen.returncode})"
            )
            self.airflow_processes[component].stop(self.echo)
            self._start_component(component)
        self._wait_for_airflow(timeout=timeout)
        return exited

    def _check_alive(self) -> None:
        for component, process in self.airflow_processes.items():
            if not process.alive():
                raise StackError(
                    f"airflow {component} exited with status {process.popen.returncode}; "
                    f"its log ({process.log_path}) ends with:\n{tail(process.log_path)}"
                )

    def _celery_workers_ready(self) -> list[str]:
        """Celery workers that have not yet logged that they are ready."""
        waiting = []
        for component, process in self.airflow_processes.items():
            if component.startswith("celery-worker-"):
                text = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
                if " ready." not in text:
                    waiting.append(component)
        return waiting

    def _wait_for_airflow(self, timeout: float | None = None) -> None:
        started = time.monotonic()
        deadline = started + (timeout or self.airflow_timeout)
        last_report = 0.0
        state = "starting"
        while True:
            self._check_alive()
            try:
                health = AirflowClient(self.airflow_url, "", "", timeout=5).health()
                unhealthy = [
                    c for c in AIRFLOW_COMPONENTS if (health.get(c) or {}).get("status") != "healthy"
                ]
                unhealthy += self._celery_workers_ready()
                state = "waiting for " + ", ".join(unhealthy) if unhealthy else "healthy"
                if not unhealthy:
                    break
            except (OSError, StackError, ValueError):
                state = "api-server not answering yet"
            now = time.monotonic()
            if now > deadline:
                log = self.airflow_log()
                raise StackError(
                    f"Airflow was not healthy within {deadline - started:.0f} s ({state}); "
                    f"log {log} ends with:\n{tail(log)}"
                )
            if now - last_report >= 5:
                self.echo(f"  Airflow: {state} ({now - started:.0f} s)")
                last_report = now
            time.sleep(1)
        if self._api is None:
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

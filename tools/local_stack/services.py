"""The services a distributed Airflow needs, as private throwaway instances: PostgreSQL (the
metadata database and Celery's result backend) and Redis (Celery's broker).

Each runs from Debian's packages (``postgresql``, ``redis-server``) as a child process of the
local stack, on a free port, with its data in a directory of its own that is removed when it
stops; nothing is written to the system's own clusters. ``make services`` installs the packages
where they are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tools.local_stack.processes import Echo, ManagedProcess, StackError, free_port, tail

POSTGRES_USER = "airflow"
POSTGRES_DATABASE = "airflow"
POSTGRES_RUN_AS = "postgres"
"""PostgreSQL refuses to run as root: as root, the server runs as Debian's ``postgres`` user."""


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        raise StackError(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql): run `make services`"
        )
    return candidates[-1].parent


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise StackError("redis-server is not installed: run `make services`")
    return path


class PostgresServer:
    """A private PostgreSQL cluster on ``127.0.0.1:<port>``, trusting local connections.

    Its data directory lives under the system's temporary directory (not in the work directory,
    whose parents the ``postgres`` user may not be allowed to enter) and is removed by :meth:`stop`.
    """

    def __init__(self, log_dir: Path, echo: Echo):
        self.log_dir = log_dir
        self.echo = echo
        self.port = free_port()
        self.data_dir: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database Airflow uses."""
        return f"postgresql+psycopg2://{POSTGRES_USER}@127.0.0.1:{self.port}/{POSTGRES_DATABASE}"

    @property
    def celery_result_backend(self) -> str:
        return f"db+postgresql+psycopg2://{POSTGRES_USER}@127.0.0.1:{self.port}/{POSTGRES_DATABASE}"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", POSTGRES_RUN_AS, "--", *argv] if os.geteuid() == 0 else argv

    def start(self, timeout: float = 60.0) -> None:
        bin_dir = postgres_bin_dir()
        self.data_dir = Path(tempfile.mkdtemp(prefix="fnf-local-stack-postgres-"))
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, POSTGRES_RUN_AS, POSTGRES_RUN_AS)
        self.echo(f"Starting PostgreSQL ({bin_dir.parent.name}) on port {self.port}")
        init_log = self.log_dir / "postgres-initdb.log"
        with open(init_log, "wb") as log:
            done = subprocess.run(
                self._as_server_user(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        POSTGRES_USER,
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--no-sync",
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            raise StackError(f"initdb failed ({done.returncode}); {init_log} ends with:\n{tail(init_log)}")
        self._run(bin_dir, timeout)
        created = subprocess.run(
            [
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                POSTGRES_USER,
                POSTGRES_DATABASE,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode:
            raise StackError(f"createdb {POSTGRES_DATABASE} failed: {created.stderr.strip()}")

    def _run(self, bin_dir: Path, timeout: float) -> None:
        """Start the server on the initialized cluster and wait until it accepts connections."""
        assert self.data_dir is not None
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.data_dir),
            "max_connections": "300",
            # a throwaway database: durability is not wanted, speed is
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.process = ManagedProcess(
            "postgresql",
            self._as_server_user(argv),
            env=os.environ,
            cwd=self.log_dir,
            log_path=self.log_dir / "postgres.log",
        )
        isready = [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", POSTGRES_USER]
        self.process.wait_until(
            lambda: subprocess.run(isready, capture_output=True, check=False).returncode == 0,
            what="accept connections",
            timeout=timeout,
            interval=0.3,
        )

    def restart(self, down_seconds: float = 0.0, timeout: float = 60.0) -> None:
        """Stop the server (fast shutdown: every client connection is cut at once), wait
        ``down_seconds``, and start it again on the same port and data: what a restart of the
        database host does to Airflow."""
        if self.process is None or self.data_dir is None:
            raise StackError("PostgreSQL is not running")
        bin_dir = postgres_bin_dir()
        self.echo(f"Restarting PostgreSQL on port {self.port} (fast shutdown)")
        subprocess.run(
            self._as_server_user(
                [str(bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
            ),
            capture_output=True,
            check=False,
            timeout=timeout,
        )
        self.process.stop(self.echo)  # the server has exited: this reaps it and closes its log
        time.sleep(down_seconds)
        self._run(bin_dir, timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(self.echo)
            self.process = None
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None


class RedisServer:
    """A private Redis on ``127.0.0.1:<port>``, in memory only."""

    def __init__(self, log_dir: Path, echo: Echo):
        self.log_dir = log_dir
        self.echo = echo
        self.port = free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        self.echo(f"Starting Redis on port {self.port}")
        argv = [
            redis_server_path(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.log_dir),
            "--daemonize",
            "no",
        ]
        self.process = ManagedProcess(
            "redis", argv, env=os.environ, cwd=self.log_dir, log_path=self.log_dir / "redis.log"
        )
        self.process.wait_until(lambda: _answers_ping(self.port), what="answer PING", timeout=timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(self.echo)
            self.process = None


def _answers_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False

"""The emulator's HTTP servers: MNS, Serverless Workflow (FnF) and STS, one process, one port each.

``Emulator(...).start()`` listens on the three ports (0 picks a free one), over plain HTTP, or over
TLS with ``tls=True`` (a local CA, :mod:`.tls`; its certificate is ``Emulator.ca_file``). The
three services share one :class:`~.identities.Identities`: the AccessKey pairs, the RAM roles STS
lets callers assume, and the temporary credentials it issued. Each server parses HTTP/1.1
(keep-alive, ``Content-Length`` always sent) into a :class:`~.core.Request`, answers the admin API
under ``/_emulator/`` itself, applies the fault rules, and hands everything else to its service.

Admin API (both ports, JSON, no authentication; the emulator binds to 127.0.0.1 by default):

- ``GET /_emulator/health``: ``{"status": "ok", "service": ..., "mns_endpoint": ..., "fnf_endpoint": ...,
  "sts_endpoint": ..., "ca_file": ...}``
- ``POST /_emulator/reset``: drop every queue, message, flow, execution, fault rule and count, and
  the RAM roles added after the start (issued temporary credentials stay valid until they expire).
- ``GET /_emulator/faults``: the active rules; ``POST`` one rule (object) or several (list), see
  :mod:`.faults`; ``DELETE /_emulator/faults`` removes all, ``DELETE /_emulator/faults/{id}`` one.
- ``GET /_emulator/stats``: requests answered since the start (or the last ``DELETE``), by
  service, operation and outcome: ``{"fnf": {"ReportTaskSucceeded": {"OK": 500,
  "TaskAlreadyCompleted": 3, "injected:InternalError": 48}}, "mns": {...}}``. An outcome is
  ``OK`` for a 2xx answer, the service's error code otherwise, ``injected:<code>`` for an
  injected error and ``dropped`` for a connection the fault rules closed; ``delayed`` counts
  the requests a latency rule slowed down (they are counted under their outcome too). With ``data_dir`` the
  counts are saved at a clean stop and read back at start, like the rest of the state.
- ``GET /_emulator/mns/message-events?queue=NAME[&message_id=ID]``: when each message was sent,
  received, had its visibility changed, was deleted or expired (:mod:`.mns.events`, memory
  only); ``DELETE`` clears it.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from fnf_emulator.core import (
    ADMIN_PREFIX,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_HOST,
    Request,
    Response,
    Service,
    ServiceError,
)
from fnf_emulator.faults import FaultInjector
from fnf_emulator.identities import Identities, RamRole
from fnf_emulator.mns.service import MNSService, parse_query
from fnf_emulator.sts import STSService
from fnf_emulator.tls import EmulatorTLS

log = logging.getLogger(__name__)

STATS_FILE = "request-stats.json"
"""Under ``data_dir``: the request counts of ``/_emulator/stats``, saved at a clean stop."""
MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Larger request bodies are refused before they are read (every service limit is far below)."""


class _BadRequest(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str,
        port: int,
        emulator: Emulator,
        service_name: str,
        service: Service,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self.service_name = service_name
        self.service = service
        self.tls = tls
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            # The handshake happens in the connection's own thread (_Handler.setup), so a slow or
            # failing client never holds up the accept loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or refused the certificate: one debug line, not a traceback."""
        log.debug(
            "%s: connection from %s ended with an error: %r", self.service_name, client_address, sys.exc_info()[1]
        )

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Cut every keep-alive connection, so nothing is answered once the emulator stopped."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    """Buffered: headers and body leave in one write (no Nagle delay between them)."""
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the base class's stderr lines; :meth:`_dispatch` logs each request."""

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise _BadRequest("malformed chunked body") from exc
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BYTES:
                    raise _BadRequest(f"request body larger than {MAX_REQUEST_BYTES} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError as exc:
            raise _BadRequest(f"invalid Content-Length {length!r}") from exc
        if size < 0 or size > MAX_REQUEST_BYTES:
            raise _BadRequest(f"request body of {size} bytes; at most {MAX_REQUEST_BYTES}")
        return self.rfile.read(size)

    def _dispatch(self) -> None:
        started = time.monotonic()
        server = self.server
        service = server.service
        target = self.path
        raw_path, _, query = target.partition("?")
        request = Request(
            method=self.command,
            path=unquote(raw_path),
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            client=self.client_address[0],
            target=target,
            scheme="https" if server.tls is not None else "http",
        )
        admin = request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/")
        try:
            request.body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            error = ServiceError(400, "InvalidArgument", f"Bad HTTP request: {exc}.")
            response = _json(400, {"error": str(exc)}) if admin else service.error_response(request, error)
            self._send(response, request, "Unknown", started)
            return
        if admin:
            self._send(server.emulator._admin(request, server.service_name), request, "Admin", started)
            return
        operation = service.operation(request)
        fault = server.emulator.faults.fire(server.service_name, operation)
        if fault is not None:
            if fault.latency_ms:
                server.emulator.stats.count(server.service_name, operation, "delayed")
                time.sleep(fault.latency_ms / 1000)
            if fault.drop_connection:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                server.emulator.stats.count(server.service_name, operation, "dropped")
                log.debug(
                    "%s %s %s %s -> dropped (injected)",
                    server.service_name,
                    operation,
                    self.command,
                    request.path,
                )
                return
            if fault.status is not None:
                error = ServiceError(fault.status, fault.code or "InternalError", fault.message)
                response = service.error_response(request, error)
                response.error_code = f"injected:{error.code}"
                self._send(response, request, operation, started)
                return
        try:
            response = service.handle(request)
        except Exception:
            log.exception("%s %s failed", server.service_name, operation)
            error = ServiceError(500, "InternalError", "Internal error of the emulator; see its log.")
            response = service.error_response(request, error)
        self._send(response, request, operation, started)

    def _send(self, response: Response, request: Request, operation: str, started: float) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if operation != "Admin":
            outcome = "OK" if response.status < 300 else (response.error_code or str(response.status))
            self.server.emulator.stats.count(self.server.service_name, operation, outcome)
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)
        log.debug(
            "%s %s %s %s -> %d in %.1f ms",
            self.server.service_name,
            operation,
            self.command,
            request.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )


class RequestStats:
    """Requests answered, by service, operation and outcome. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, dict[str, int]]] = {}

    def count(self, service: str, operation: str, outcome: str) -> None:
        with self._lock:
            outcomes = self._counts.setdefault(service, {}).setdefault(operation, {})
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    def snapshot(self) -> dict[str, dict[str, dict[str, int]]]:
        with self._lock:
            return {s: {o: dict(c) for o, c in ops.items()} for s, ops in self._counts.items()}

    def load(self, path: Path) -> None:
        """Add the counts saved by :meth:`save` (a missing or unreadable file adds nothing)."""
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for service, operations in saved.items():
            for operation, outcomes in operations.items():
                for outcome, count in outcomes.items():
                    with self._lock:
                        slot = self._counts.setdefault(service, {}).setdefault(operation, {})
                        slot[outcome] = slot.get(outcome, 0) + int(count)

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        temporary.replace(path)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


def _json(status: int, payload: object) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


class Emulator:
    """The MNS, Serverless Workflow and STS emulators in this process.

    :param host: address to bind the servers to.
    :param mns_port: MNS port; 0 picks a free one.
    :param fnf_port: Serverless Workflow port; 0 picks a free one.
    :param sts_port: STS port; 0 picks a free one; None serves no STS.
    :param access_keys: AccessKey ID -> secret accepted by every service.
    :param sts_tokens: fixed security token -> the AccessKey ID it belongs to (never expires).
    :param ram_roles: the RAM roles STS lets callers assume (:class:`~.identities.RamRole`, or the
        command line's ``ARN[,external_id=...][,trust=...][,session_seconds=...]`` text).
    :param sts_session_seconds: every STS session lasts this many seconds, whatever
        DurationSeconds asks (a role's ``session_seconds`` wins): expiry in seconds, for tests.
    :param tls: serve every endpoint over HTTPS with a local CA (:attr:`ca_file`; needs the
        ``tls`` extra). alibabacloud-credentials reaches STS over HTTPS only.
    :param data_dir: keep state in SQLite under this directory (survives restarts); memory when None.
    :param fnf_throttle: apply Serverless Workflow's published API rate limits.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        mns_port: int = 0,
        fnf_port: int = 0,
        access_keys: dict[str, str] | None = None,
        sts_tokens: dict[str, str] | None = None,
        data_dir: str | None = None,
        fnf_throttle: bool = False,
        *,
        sts_port: int | None = 0,
        ram_roles: Iterable[RamRole | str] = (),
        sts_session_seconds: int | None = None,
        tls: bool = False,
    ) -> None:
        self.host = host
        self.mns_port = mns_port
        self.fnf_port = fnf_port
        self.sts_port = sts_port
        self.access_keys = dict(access_keys or {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET})
        self.sts_tokens = dict(sts_tokens or {})
        self.data_dir = data_dir
        self.fnf_throttle = fnf_throttle
        self.tls = tls
        self.identities = Identities(
            self.access_keys,
            self.sts_tokens,
            roles=[r if isinstance(r, RamRole) else RamRole.parse(r) for r in ram_roles],
            session_seconds=sts_session_seconds,
            data_dir=data_dir,
        )
        self.faults = FaultInjector()
        self.stats = RequestStats()
        self.mns: MNSService | None = None
        self.fnf: Service | None = None
        self.sts: STSService | None = None
        self._tls: EmulatorTLS | None = None
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def _stats_path(self) -> Path | None:
        return Path(self.data_dir) / STATS_FILE if self.data_dir else None

    def start(self) -> Emulator:
        if self._servers:
            raise RuntimeError("the emulator is already running")
        if self._stats_path is not None:
            self.stats.clear()
            self.stats.load(self._stats_path)
        try:
            context = None
            if self.tls:
                self._tls = EmulatorTLS(hosts=[self.host], data_dir=self.data_dir)
                context = self._tls.server_context()
            self.mns = MNSService(data_dir=self.data_dir, identities=self.identities)
            self._servers.append(_Server(self.host, self.mns_port, self, "mns", self.mns, context))
            try:
                from fnf_emulator.fnf.service import FnFService
            except ImportError as exc:
                log.warning("Serverless Workflow emulator unavailable (%s); serving MNS only", exc)
            else:
                self.fnf = FnFService(
                    mns=self.mns,
                    access_keys=self.access_keys,
                    data_dir=self.data_dir,
                    throttle=self.fnf_throttle,
                    identities=self.identities,
                )
                self._servers.append(_Server(self.host, self.fnf_port, self, "fnf", self.fnf, context))
            if self.sts_port is not None:
                self.sts = STSService(self.identities)
                self._servers.append(_Server(self.host, self.sts_port, self, "sts", self.sts, context))
        except BaseException:
            self.stop()
            raise
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"emulator-{server.service_name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info("MNS emulator listening on %s", self.mns_endpoint)
        if self.fnf is not None:
            log.info("Serverless Workflow emulator listening on %s", self.fnf_endpoint)
        if self.sts is not None:
            log.info(
                "STS emulator listening on %s (roles: %s)",
                self.sts_endpoint,
                ", ".join(r.arn for r in self.identities.roles) or "none",
            )
        if self.ca_file is not None:
            log.info(
                "TLS on every endpoint; CA certificate %s (point SSL_CERT_FILE and REQUESTS_CA_BUNDLE at it)",
                self.ca_file,
            )
        return self

    def stop(self) -> None:
        """Stop both servers, wake every long poll, close connections and storage. Idempotent."""
        servers, self._servers = self._servers, []
        threads, self._threads = self._threads, []
        serving = [s for s in servers if any(t.name == f"emulator-{s.service_name}" for t in threads)]
        stoppers = [threading.Thread(target=s.shutdown) for s in serving]  # in parallel: each waits a poll
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for service in (self.fnf, self.mns, self.sts):
            if service is not None:
                service.close()
        for server in servers:
            server.close_connections()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
        if servers and self._stats_path is not None:
            self.stats.save(self._stats_path)
        if self._tls is not None:
            self._tls.close()
            self._tls = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- endpoints -------------------------------------------------------------------------
    def _endpoint(self, service_name: str) -> str:
        for server in self._servers:
            if server.service_name == service_name:
                host, port = str(server.server_address[0]), server.server_address[1]
                if host in ("0.0.0.0", "::", ""):
                    host = "127.0.0.1"
                if ":" in host:
                    host = f"[{host}]"
                return f"{'https' if server.tls is not None else 'http'}://{host}:{port}"
        raise RuntimeError(f"the {service_name} emulator is not running")

    @property
    def mns_endpoint(self) -> str:
        return self._endpoint("mns")

    @property
    def fnf_endpoint(self) -> str:
        return self._endpoint("fnf")

    @property
    def sts_endpoint(self) -> str:
        """``http(s)://host:port`` of STS; alibabacloud-credentials takes it as ``host:port``
        (its ``sts_endpoint``) and speaks HTTPS only."""
        return self._endpoint("sts")

    @property
    def ca_file(self) -> str | None:
        """The CA certificate that signed the endpoints' certificate (``tls=True``), else None."""
        return self._tls.ca_file if self._tls is not None else None

    # --- identities --------------------------------------------------------------------------------
    def add_ram_role(self, role: RamRole | str) -> RamRole:
        """Let STS callers assume ``role`` (``RamRole`` or ``ARN[,option=value...]``) until the next reset."""
        return self.identities.add_role(role if isinstance(role, RamRole) else RamRole.parse(role))

    # --- admin API -------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop all state of the services, every fault rule, the request counts and the RAM roles
        added since the start (issued temporary credentials stay valid until they expire)."""
        self.faults.clear()
        self.stats.clear()
        self.identities.reset()
        for service in (self.mns, self.fnf, self.sts):
            if service is not None:
                service.reset()

    def _admin(self, request: Request, service_name: str) -> Response:
        parts = [p for p in request.path[len(ADMIN_PREFIX) :].split("/") if p]
        method = request.method
        if parts == ["health"] and method in ("GET", "HEAD"):
            endpoints = {
                name: self._endpoint(name)
                for name in ("mns", "fnf", "sts")
                if any(s.service_name == name for s in self._servers)
            }
            return _json(
                200,
                {
                    "status": "ok",
                    "service": service_name,
                    "mns_endpoint": endpoints.get("mns"),
                    "fnf_endpoint": endpoints.get("fnf"),
                    "sts_endpoint": endpoints.get("sts"),
                    "ca_file": self.ca_file,
                },
            )
        if parts == ["reset"] and method == "POST":
            self.reset()
            return _json(200, {"reset": True})
        if parts == ["stats"]:
            if method == "GET":
                return _json(200, self.stats.snapshot())
            if method == "DELETE":
                self.stats.clear()
                return _json(200, {"cleared": True})
        if parts == ["faults"]:
            if method == "GET":
                return _json(200, {"faults": [r.to_dict() for r in self.faults.rules()]})
            if method == "DELETE":
                count = len(self.faults.rules())
                self.faults.clear()
                return _json(200, {"deleted": count})
            if method == "POST":
                try:
                    spec = json.loads(request.body or b"null")
                except ValueError as exc:
                    return _json(400, {"error": f"the body is not JSON: {exc}"})
                specs = spec if isinstance(spec, list) else [spec]
                added = []
                try:
                    for item in specs:
                        added.append(self.faults.add(item, service_name))
                except ValueError as exc:
                    for rule in added:
                        self.faults.remove(rule.id)
                    return _json(400, {"error": str(exc)})
                return _json(201, {"faults": [r.to_dict() for r in added]})
        if parts == ["mns", "message-events"] and self.mns is not None:
            if method == "GET":
                params = parse_query(request.query)
                found = self.mns.message_events.events(params.get("queue"), params.get("message_id"))
                return _json(200, {"events": found})
            if method == "DELETE":
                self.mns.message_events.clear()
                return _json(200, {"cleared": True})
        if len(parts) == 2 and parts[0] == "faults" and method == "DELETE":
            if parts[1].isdigit() and self.faults.remove(int(parts[1])):
                return _json(200, {"deleted": 1})
            return _json(404, {"error": f"no fault rule {parts[1]}"})
        return _json(
            404,
            {
                "error": f"no admin resource {method} {request.path}; see health, reset, faults, stats, mns/message-events"
            },
        )

"""Hook for Alibaba Cloud Serverless Workflow and CloudFlow (FnF, API 2019-03-15), over
``alibabacloud-fnf20190315``. CloudFlow is the current generation of the same service: one API,
one SDK, one hook; the connection's extra ``service`` says which generation's limits apply.

Reporting a task token is the heart of it: :meth:`ServerlessWorkflowHook.report_task_succeeded`
and :meth:`~ServerlessWorkflowHook.report_task_failed` check the service's limits before the call,
retry throttling, server errors, ``TaskInvalidState`` and network failures with backoff and
jitter, and raise :class:`~airflow_provider_fnf.exceptions.ServerlessWorkflowTaskAlreadyCompletedError`
when the token was reported before, which callers treat as done. Task tokens are masked in logs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_fnf.credentials import (
    AlibabaCloudCredentials,
    RAMRoleSettings,
    SDKCredentials,
    credential_source,
    credentials_from_connection,
    role_from_connection,
)
from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    FnFProviderError,
    ServerlessWorkflowAuthenticationError,
    ServerlessWorkflowEndpointUnreachableError,
    ServerlessWorkflowError,
    ServerlessWorkflowExecutionNotFoundError,
    ServerlessWorkflowFlowNotFoundError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowTaskAlreadyCompletedError,
    ServerlessWorkflowThrottledError,
)
from airflow_provider_fnf.hooks._common import (
    RETRY_BASE_DELAY_SECONDS,
    RETRY_MAX_DELAY_SECONDS,
    ConnectionSettingsHook,
    backoff_delay,
    extra_str,
    untrusted_certificate_advice,
)
from airflow_provider_fnf.limits import (
    CLOUDFLOW_EXPRESS_MAX_SECONDS,
    FNF_DEFAULT_SERVICE,
    FNF_MAX_DESCRIBE_WAIT_SECONDS,
    FNF_MAX_ERROR_CHARS,
    FNF_MAX_HISTORY_LIMIT,
    FNF_MAX_LIST_LIMIT,
    FNF_MAX_NAME_CHARS,
    FNF_SERVICE_LIMITS,
    FnFServiceLimits,
)
from airflow_provider_fnf.masking import mask_task_token, redact_text, scrub_exception_chain
from airflow_provider_fnf.reporting import json_object_text, truncate_cause

if TYPE_CHECKING:
    from alibabacloud_fnf20190315.client import Client as FnFClient
    from darabonba.runtime import RuntimeOptions

log = logging.getLogger(__name__)

REPORT_ACTIONS = frozenset({"ReportTaskSucceeded", "ReportTaskFailed"})
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "InvalidAccessKeyID",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureNotMatch",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidSecurityToken",
        "InvalidSecurityToken.Expired",
        "InvalidSecurityToken.Malformed",
        "InvalidSecurityToken.MismatchWithAccessKey",
        "RequestTimeTooSkewed",
        "InvalidCredentials",
        "Forbidden.RAM",
    }
)
FNF_EXPIRED_TOKEN_CODES = frozenset({"InvalidSecurityToken.Expired"})
"""The API gateway's answer to temporary credentials past their expiration: the hook renews
them once and sends the request again."""
DEFAULT_THROTTLE_RETRY_SECONDS = 120.0
"""How long a throttled call keeps retrying: 100 reports queued behind the ReportTask* quota
(10 burst, 2 per second) are through in about 45 s."""
_THROTTLE_CODES = frozenset({"ResourceThrottled", "Throttling", "Throttling.User", "Throttling.Api"})
_RETRYABLE_CODES = _THROTTLE_CODES | {"TaskInvalidState", "InternalServerError", "ServiceUnavailable"}
REJECTED_TOKEN_CODES = frozenset({"InvalidArgument", "InvalidTaskToken", "InvalidParameter.TaskToken"})
"""What ReportTaskSucceeded/ReportTaskFailed answer for a task token the service will never accept
(the one place that decides it; callers see :class:`ServerlessWorkflowInvalidTaskTokenError`).
The published codes of ReportTask* have no 404 for an unknown token; a token that cannot be
parsed or verified answers 400 ``InvalidArgument`` (the emulator does the same for both, its
choice marked *unconfirmed*). The report's other arguments are checked before the call, so an
InvalidArgument to a report is the token."""
EXECUTION_MODES = ("Standard", "Express")
"""CloudFlow's flow execution modes (CreateFlow ``ExecutionMode``): Standard runs through
StartExecution, Express only through StartSyncExecution."""


@dataclass(frozen=True)
class _FnFSettings:
    endpoint: str
    """host[:port] as the SDK wants it."""
    protocol: str
    region: str | None
    credentials: AlibabaCloudCredentials | None
    """Static credentials (the source of ``role`` if set), or None for the default chain."""
    role: RAMRoleSettings | None = None
    """The RAM role assumed with them (extra ``role_arn``...), if any."""
    service: str = FNF_DEFAULT_SERVICE
    """The connection's extra ``service``: ``serverless_workflow`` or ``cloudflow``."""


class ServerlessWorkflowHook(ConnectionSettingsHook[_FnFSettings]):
    """Talk to Serverless Workflow or CloudFlow: report task tokens, start and watch executions
    (Express ones synchronously), manage flows.

    Connection (type ``fnf``): login = AccessKey ID, password = AccessKey Secret, extra
    ``{"region": "cn-hangzhou"}`` and optionally ``"endpoint"`` (``host[:port]`` or
    ``http(s)://host[:port]``), ``"protocol"`` (``https`` default, ``http``),
    ``"security_token"`` (STS) and ``"service"``: ``"serverless_workflow"`` (default: the
    previous generation's 32 KiB Output and Input, which both generations accept) or
    ``"cloudflow"`` (64 KiB). With no login and password, the alibabacloud-credentials default
    chain is used. With ``"role_arn"`` (and optionally ``role_session_name``, ``external_id``,
    ``session_duration``, ``policy``, ``sts_endpoint``, ``sts_region``) those credentials assume
    the RAM role and the hook signs with the role's, renewed before they expire
    (:mod:`airflow_provider_fnf.credentials`).

    Returned dicts keep the API's PascalCase keys (``Status``, ``Output``, ``StartedTime``...).

    :param fnf_conn_id: the ``fnf`` connection to use.
    :param max_attempts: attempts per call on server errors (5xx), ``TaskInvalidState`` (409),
        network errors and throttling (429), with exponential backoff and jitter.
    :param throttle_retry_seconds: a throttled call (429 ResourceThrottled) keeps retrying past
        ``max_attempts`` until this many seconds have passed since its first attempt. The
        published quota for ReportTask* is a burst of 10 then 2 per second per account, so many
        runs reporting at once must wait their turn rather than fail.
    """

    conn_name_attr = "fnf_conn_id"
    default_conn_name = "fnf_default"
    conn_type = "fnf"
    hook_name = "Alibaba Cloud Serverless Workflow"

    read_timeout_seconds: float = 10.0
    """Read timeout of a call; a long-polling DescribeExecution adds its wait to it."""
    connect_timeout_seconds: float = 5.0

    def __init__(
        self,
        fnf_conn_id: str = default_conn_name,
        *,
        max_attempts: int = 5,
        throttle_retry_seconds: float = DEFAULT_THROTTLE_RETRY_SECONDS,
    ) -> None:
        super().__init__()
        if max_attempts < 1:
            raise FnFConfigurationError(
                f"max_attempts must be at least 1, got {max_attempts}", conn_id=fnf_conn_id
            )
        self.fnf_conn_id = fnf_conn_id
        self.max_attempts = max_attempts
        self.throttle_retry_seconds = throttle_retry_seconds
        self.retry_base_delay = RETRY_BASE_DELAY_SECONDS
        self.retry_max_delay = RETRY_MAX_DELAY_SECONDS
        self._local = threading.local()
        self._lock = threading.Lock()
        self._credentials_adapter: _ServerlessWorkflowCredentials | None = None

    # --- connection and clients --------------------------------------------------------
    def _settings_from(self, conn: Any) -> _FnFSettings:
        extra = dict(conn.extra_dejson or {})
        credentials = credentials_from_connection(self.fnf_conn_id, conn.login, conn.password, extra)
        region = extra_str(extra, "region")
        service = (extra_str(extra, "service") or FNF_DEFAULT_SERVICE).lower()
        if service not in FNF_SERVICE_LIMITS:
            raise FnFConfigurationError(
                f"Connection {self.fnf_conn_id!r}: extra 'service' must be one of "
                f"{', '.join(FNF_SERVICE_LIMITS)}, got {extra.get('service')!r}",
                conn_id=self.fnf_conn_id,
            )
        protocol = extra_str(extra, "protocol")
        endpoint = extra_str(extra, "endpoint")
        if protocol is not None:
            protocol = protocol.lower()
            if protocol not in ("http", "https"):
                raise FnFConfigurationError(
                    f"Connection {self.fnf_conn_id!r}: extra 'protocol' must be http or https, got {protocol!r}",
                    conn_id=self.fnf_conn_id,
                )
        if endpoint:
            endpoint = endpoint.rstrip("/")
            if "://" in endpoint:
                scheme, _, endpoint = endpoint.partition("://")
                scheme = scheme.lower()
                if scheme not in ("http", "https"):
                    raise FnFConfigurationError(
                        f"Connection {self.fnf_conn_id!r}: extra 'endpoint' must be host[:port] or "
                        f"http(s)://host[:port], got scheme {scheme!r}",
                        conn_id=self.fnf_conn_id,
                    )
                if protocol is not None and protocol != scheme:
                    raise FnFConfigurationError(
                        f"Connection {self.fnf_conn_id!r}: extra 'endpoint' says {scheme} but 'protocol' "
                        f"says {protocol}; drop one of them",
                        conn_id=self.fnf_conn_id,
                    )
                protocol = scheme
            if not endpoint or "/" in endpoint:
                raise FnFConfigurationError(
                    f"Connection {self.fnf_conn_id!r}: extra 'endpoint' must be host[:port] with no path, "
                    f"got {extra.get('endpoint')!r}",
                    conn_id=self.fnf_conn_id,
                )
        elif region:
            endpoint = f"{region}.fnf.aliyuncs.com"
        else:
            raise FnFConfigurationError(
                f"Connection {self.fnf_conn_id!r} has neither extra 'region' nor 'endpoint': set the "
                "region (e.g. cn-hangzhou), or the endpoint (host:port) for the local emulator",
                conn_id=self.fnf_conn_id,
            )
        return _FnFSettings(
            endpoint=endpoint,
            protocol=protocol or "https",
            region=region,
            credentials=credentials,
            role=role_from_connection(self.fnf_conn_id, extra),
            service=service,
        )

    @property
    def limits(self) -> FnFServiceLimits:
        """The limits of the service generation the connection talks to (its extra ``service``)."""
        return FNF_SERVICE_LIMITS[self.settings.service]

    def check_json_object(self, value: Mapping[str, Any] | str, *, what: str) -> str:
        """``value`` as compact JSON text of an object within the connection's service limit;
        :func:`json_object_text` with this connection's limits."""
        return json_object_text(value, what=what, limits=self.limits, conn_id=self.fnf_conn_id)

    def get_conn(self) -> FnFClient:
        """This thread's SDK client (created on first use in each thread; clients are cheap)."""
        client = getattr(self._local, "client", None)
        if client is None:
            from alibabacloud_fnf20190315.client import Client
            from alibabacloud_tea_openapi.models import Config

            s = self.settings
            config = Config(
                endpoint=s.endpoint,
                protocol=s.protocol,
                region_id=s.region,
                read_timeout=int(self.read_timeout_seconds * 1000),
                connect_timeout=int(self.connect_timeout_seconds * 1000),
                credential=self._credentials(),
            )
            client = Client(config)
            self._local.client = client
        return client

    def _credentials(self) -> _ServerlessWorkflowCredentials:
        """The one credentials client of this hook's SDK clients (every thread's)."""
        settings = self.settings
        with self._lock:
            if self._credentials_adapter is None:
                source = credential_source(self.fnf_conn_id, settings.credentials, settings.role)
                self._credentials_adapter = _ServerlessWorkflowCredentials(self.fnf_conn_id, source)
            return self._credentials_adapter

    # --- retries and errors ------------------------------------------------------------
    def _call(
        self,
        action: str,
        resource: str | None,
        fn: Callable[[FnFClient, RuntimeOptions], Any],
        *,
        read_timeout_seconds: float | None = None,
        secrets: tuple[str, ...] = (),
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Run one SDK call with bounded retries; return the response body as a PascalCase dict.
        A call that is not ``idempotent`` is retried only when it was throttled (refused unrun)."""
        from darabonba.runtime import RuntimeOptions
        from Tea.exceptions import TeaException

        read_timeout = read_timeout_seconds or self.read_timeout_seconds
        runtime = RuntimeOptions(
            read_timeout=int(read_timeout * 1000), connect_timeout=int(self.connect_timeout_seconds * 1000)
        )
        client = self.get_conn()
        attempt = 0
        started = time.monotonic()
        renewed = False
        while True:
            attempt += 1
            try:
                response = fn(client, runtime)
                return response.body.to_map() if response.body is not None else {}
            except TeaException as exc:
                inner = getattr(exc, "inner_exception", None)
                if isinstance(inner, FnFProviderError):
                    # Our own, from the credentials (a role that cannot be assumed...), with its cause.
                    raise inner from inner.__cause__
                if (
                    not renewed
                    and _error_code(exc) in FNF_EXPIRED_TOKEN_CODES
                    and self._renew_credentials(action)
                ):
                    renewed = True
                    attempt -= 1  # refused before it did anything
                    continue
                within_budget = attempt < self.max_attempts or (
                    _is_throttled(exc) and time.monotonic() - started < self.throttle_retry_seconds
                )
                if within_budget and is_retryable_fnf_error(exc, idempotent=idempotent):
                    retry_after = getattr(exc, "retry_after", None)
                    delay = backoff_delay(
                        attempt,
                        base=self.retry_base_delay,
                        cap=self.retry_max_delay,
                        retry_after=retry_after / 1000 if retry_after else None,
                    )
                    log.warning(
                        "Serverless Workflow %s%s failed (%s), attempt %d; retrying in %.2f s",
                        action,
                        f" for {resource}" if resource else "",
                        _error_code(exc) or type(exc).__name__,
                        attempt,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                translated = self._translate(exc, action, resource, attempt, secrets)
                raise translated from scrub_exception_chain(exc, secrets)

    def _renew_credentials(self, action: str) -> bool:
        """After the service answered "security token expired": renew the credentials this thread
        signed with, once; True when a retry will sign with other ones."""
        adapter = self._credentials()
        renewed = adapter.source.refresh(adapter.last_issued)
        log.info(
            "Serverless Workflow %s met expired credentials of connection %s; %s",
            action,
            self.fnf_conn_id,
            "renewed them, sending it again" if renewed else "none newer are to be had",
        )
        return renewed

    def _credentials_advice(self, code: str | None) -> str:
        role = self.settings.role
        if role is None:
            return (
                "check the AccessKey ID (login), the AccessKey Secret (password), the STS security_token "
                "in extra, the machine's clock, and the RAM policy."
            )
        if code in FNF_EXPIRED_TOKEN_CODES:
            return (
                f"the STS session of RAM role {role.role_arn} expired and a renewed one was refused as "
                "well: check the machine's clock (it must agree with the service's) and session_duration."
            )
        return (
            f"the connection signs as RAM role {role.role_arn}: check that the role's policy allows this "
            "action (fnf:ReportTaskSucceeded, fnf:ReportTaskFailed...), the inline policy in extra if "
            "any, and that role_arn names the account that owns the flow."
        )

    def _translate(
        self, exc: Exception, action: str, resource: str | None, attempts: int, secrets: tuple[str, ...]
    ) -> ServerlessWorkflowError:
        conn_id = self.fnf_conn_id
        endpoint = f"{self.settings.protocol}://{self.settings.endpoint}"
        code = _error_code(exc)
        status = _status_code(exc)
        request_id = getattr(exc, "request_id", None)
        detail = _scrub(str(getattr(exc, "message", None) or exc), secrets)
        where = f" for {resource}" if resource else ""
        after = f" after {attempts} attempts" if attempts > 1 else ""
        common: dict[str, Any] = {
            "conn_id": conn_id,
            "resource": resource,
            "code": code,
            "status": status,
            "request_id": request_id,
        }
        inner = getattr(exc, "inner_exception", None)
        if inner is not None and _is_network_error(inner):
            return ServerlessWorkflowEndpointUnreachableError(
                f"Serverless Workflow endpoint {endpoint} (connection {conn_id!r}) did not answer "
                f"{action}{where}{after}: {_scrub(str(inner), secrets)}. Check the connection's extra "
                "'endpoint', 'protocol' and 'region', the network, and that the service is running."
                + untrusted_certificate_advice(str(inner)),
                **common,
            )
        if code == "TaskAlreadyCompleted":
            return ServerlessWorkflowTaskAlreadyCompletedError(
                f"Serverless Workflow {action}: the task token was already reported (TaskAlreadyCompleted); "
                f"the task is done (connection {conn_id!r}, request id {request_id})",
                **common,
            )
        if action in REPORT_ACTIONS and code in REJECTED_TOKEN_CODES:
            return ServerlessWorkflowInvalidTaskTokenError(
                f"Serverless Workflow {action} rejected the task token ({code}: {detail}): it is truncated, "
                "altered or from another account or region. Check where the token was read from the message "
                f"(connection {conn_id!r}, endpoint {endpoint})",
                **common,
            )
        if code == "FlowNotExists":
            return ServerlessWorkflowFlowNotFoundError(
                f"Serverless Workflow {action}{where}: the flow does not exist at {endpoint} (FlowNotExists, "
                f"connection {conn_id!r}): check the flow name and the connection's region",
                **common,
            )
        if code == "ExecutionNotExists":
            return ServerlessWorkflowExecutionNotFoundError(
                f"Serverless Workflow {action}{where}: the execution does not exist at {endpoint} "
                f"(ExecutionNotExists, connection {conn_id!r}): check the flow and execution names",
                **common,
            )
        if code in _AUTH_CODES or status in (401, 403):
            return ServerlessWorkflowAuthenticationError(
                f"Serverless Workflow rejected the credentials of connection {conn_id!r} ({code}: {detail}) on "
                f"{action}{where} at {endpoint}: {self._credentials_advice(code)}",
                **common,
            )
        if code in _THROTTLE_CODES or status == 429:
            return ServerlessWorkflowThrottledError(
                f"Serverless Workflow throttled {action}{where}{after} ({code}): the account's API quota is "
                f"exhausted; slow down or spread the calls (connection {conn_id!r}, request id {request_id})",
                **common,
            )
        return ServerlessWorkflowError(
            f"Serverless Workflow {action}{where} failed{after} with {code or type(exc).__name__}"
            f"{f' (HTTP {status})' if status else ''}: {detail} (connection {conn_id!r}, endpoint {endpoint}, "
            f"request id {request_id})",
            **common,
        )

    # --- task tokens -------------------------------------------------------------------
    def report_task_succeeded(self, task_token: str, output: Mapping[str, Any] | str) -> int:
        """Report a callback task (``waitForCallback``, CloudFlow's ``WaitForCustomCallback``) as
        succeeded; ``output`` (a JSON object, as a dict or JSON text, within the service's limit:
        32 KiB Serverless Workflow, 64 KiB CloudFlow) becomes the step's ``$local`` (CloudFlow:
        the state's ``$Output``). Return the service's EventId.

        :raises ServerlessWorkflowOutputError: output is not a JSON object or is too large.
        :raises ServerlessWorkflowTaskAlreadyCompletedError: the token was reported before.
        """
        from alibabacloud_fnf20190315.models import ReportTaskSucceededRequest

        token = _check_token(task_token)
        text = self.check_json_object(output, what="the Output")
        request = ReportTaskSucceededRequest(task_token=token, output=text)
        body = self._call(
            "ReportTaskSucceeded",
            None,
            lambda c, rt: c.report_task_succeeded_with_options(request, rt),
            secrets=(token,),
        )
        event_id = int(body.get("EventId") or 0)
        log.info("Reported a task as succeeded to Serverless Workflow (event %s)", event_id)
        return event_id

    def report_task_failed(self, task_token: str, error: str, cause: str) -> int:
        """Report a waitForCallback task as failed. ``error`` (1..128 characters) is the name the
        flow's retry/catch rules match; ``cause`` is cut to 4,096 characters with a visible
        ``...[truncated N chars]`` marker. Return the service's EventId.

        :raises ServerlessWorkflowTaskAlreadyCompletedError: the token was reported before.
        """
        from alibabacloud_fnf20190315.models import ReportTaskFailedRequest

        token = _check_token(task_token)
        limit = self.limits.max_error_chars
        if not isinstance(error, str) or not 1 <= len(error) <= limit:
            got = (
                f"{len(error)} characters, {len(error) - limit} over the limit"
                if isinstance(error, str) and error
                else ("an empty string" if isinstance(error, str) else type(error).__name__)
            )
            raise FnFConfigurationError(
                f"ReportTaskFailed Error must be 1..{limit} characters in {self.limits.service}, got "
                f"{got}: {str(error)[:40]!r}...",
                conn_id=self.fnf_conn_id,
            )
        request = ReportTaskFailedRequest(
            task_token=token,
            error=error,
            cause=truncate_cause(str(cause or error), self.limits.max_cause_chars),
        )
        body = self._call(
            "ReportTaskFailed",
            None,
            lambda c, rt: c.report_task_failed_with_options(request, rt),
            secrets=(token,),
        )
        event_id = int(body.get("EventId") or 0)
        log.info("Reported a task as failed (%s) to Serverless Workflow (event %s)", error, event_id)
        return event_id

    # --- executions --------------------------------------------------------------------
    def start_execution(
        self,
        flow_name: str,
        input: Mapping[str, Any] | str | None = None,
        execution_name: str | None = None,
        *,
        qualifier: str | None = None,
    ) -> dict[str, Any]:
        """Start an execution of ``flow_name`` with ``input`` (a JSON object). Without a name one is
        generated, so that a retried call cannot start the flow twice. ``qualifier`` (CloudFlow)
        names the flow version or alias to run. Standard flows only: an Express flow runs through
        :meth:`start_sync_execution`. Return the execution."""
        from alibabacloud_fnf20190315.models import StartExecutionRequest

        _check_name("flow_name", flow_name)
        name = execution_name or f"airflow-{uuid.uuid4()}"
        _check_name("execution_name", name)
        text = self.check_json_object(input, what="the Input") if input is not None else None
        request = StartExecutionRequest(
            flow_name=flow_name, execution_name=name, input=text, qualifier=qualifier or None
        )
        body = self._call(
            "StartExecution",
            f"flow {flow_name!r}" + (f" ({qualifier})" if qualifier else ""),
            lambda c, rt: c.start_execution_with_options(request, rt),
        )
        log.info("Started Serverless Workflow execution %s of flow %s", body.get("Name", name), flow_name)
        return body

    def start_sync_execution(
        self,
        flow_name: str,
        input: Mapping[str, Any] | str | None = None,
        execution_name: str | None = None,
        *,
        qualifier: str | None = None,
    ) -> dict[str, Any]:
        """Run an execution of a CloudFlow Express flow and return it once it has ended (at most
        5 minutes): ``Status`` (``Succeeded``, ``Failed``, ``TimedOut``...), ``Output``,
        ``ErrorCode``, ``ErrorMessage``, ``Name``, ``StartedTime``, ``StoppedTime``.

        The service names the execution ``{execution_name}:{UUID}`` (names need not be unique).
        The call is retried only when throttled: after a network failure or a server error the
        flow may have run, and running it again is the caller's decision.
        """
        from alibabacloud_fnf20190315.models import StartSyncExecutionRequest

        _check_name("flow_name", flow_name)
        if execution_name is not None:
            _check_name("execution_name", execution_name)
        text = self.check_json_object(input, what="the Input") if input is not None else None
        request = StartSyncExecutionRequest(
            flow_name=flow_name, execution_name=execution_name, input=text, qualifier=qualifier or None
        )
        body = self._call(
            "StartSyncExecution",
            f"flow {flow_name!r}" + (f" ({qualifier})" if qualifier else ""),
            lambda c, rt: c.start_sync_execution_with_options(request, rt),
            read_timeout_seconds=self.read_timeout_seconds + CLOUDFLOW_EXPRESS_MAX_SECONDS,
            idempotent=False,
        )
        log.info("Express execution %s of flow %s ended %s", body.get("Name"), flow_name, body.get("Status"))
        return body

    def describe_execution(
        self, flow_name: str, execution_name: str, wait_time_seconds: int = 0
    ) -> dict[str, Any]:
        """The execution; with ``wait_time_seconds`` (0..60) the service holds the call until the
        execution ends or the wait is over."""
        from alibabacloud_fnf20190315.models import DescribeExecutionRequest

        if isinstance(wait_time_seconds, bool) or not 0 <= wait_time_seconds <= FNF_MAX_DESCRIBE_WAIT_SECONDS:
            raise FnFConfigurationError(
                f"wait_time_seconds must be 0..{FNF_MAX_DESCRIBE_WAIT_SECONDS}, got {wait_time_seconds!r}",
                resource=f"execution {execution_name!r} of flow {flow_name!r}",
            )
        request = DescribeExecutionRequest(
            flow_name=flow_name, execution_name=execution_name, wait_time_seconds=wait_time_seconds
        )
        return self._call(
            "DescribeExecution",
            f"execution {execution_name!r} of flow {flow_name!r}",
            lambda c, rt: c.describe_execution_with_options(request, rt),
            read_timeout_seconds=self.read_timeout_seconds + wait_time_seconds,
        )

    def get_execution_history(self, flow_name: str, execution_name: str) -> list[dict[str, Any]]:
        """Every event of the execution, all pages, oldest first."""
        from alibabacloud_fnf20190315.models import GetExecutionHistoryRequest

        events: list[dict[str, Any]] = []
        next_token: str | None = None
        while True:
            request = GetExecutionHistoryRequest(
                flow_name=flow_name,
                execution_name=execution_name,
                limit=FNF_MAX_HISTORY_LIMIT,
                next_token=next_token,
            )

            def call(c: FnFClient, rt: RuntimeOptions, request: Any = request) -> Any:
                return c.get_execution_history_with_options(request, rt)

            body = self._call(
                "GetExecutionHistory", f"execution {execution_name!r} of flow {flow_name!r}", call
            )
            events.extend(body.get("Events") or [])
            next_token = body.get("NextToken") or None
            if not next_token:
                return events

    def stop_execution(
        self, flow_name: str, execution_name: str, error: str | None = None, cause: str | None = None
    ) -> dict[str, Any]:
        """Stop a running execution; return it."""
        from alibabacloud_fnf20190315.models import StopExecutionRequest

        if error is not None and len(error) > FNF_MAX_ERROR_CHARS:
            raise FnFConfigurationError(
                f"StopExecution error must be at most {FNF_MAX_ERROR_CHARS} characters, got {len(error)}",
                resource=f"execution {execution_name!r} of flow {flow_name!r}",
            )
        request = StopExecutionRequest(
            flow_name=flow_name,
            execution_name=execution_name,
            error=error,
            cause=truncate_cause(cause) if cause is not None else None,
        )
        body = self._call(
            "StopExecution",
            f"execution {execution_name!r} of flow {flow_name!r}",
            lambda c, rt: c.stop_execution_with_options(request, rt),
        )
        log.info("Stopped Serverless Workflow execution %s of flow %s", execution_name, flow_name)
        return body

    def list_executions(
        self,
        flow_name: str,
        status: str | None = None,
        limit: int | None = None,
        *,
        qualifier: str | None = None,
    ) -> list[dict[str, Any]]:
        """Executions of the flow (newest first, as the service orders them), optionally only those
        with ``status`` or started with ``qualifier`` (CloudFlow); all pages, or at most ``limit``."""
        from alibabacloud_fnf20190315.models import ListExecutionsRequest

        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise FnFConfigurationError(
                f"limit must be at least 1, got {limit!r}", resource=f"flow {flow_name!r}"
            )
        executions: list[dict[str, Any]] = []
        next_token: str | None = None
        while True:
            page = FNF_MAX_LIST_LIMIT if limit is None else min(FNF_MAX_LIST_LIMIT, limit - len(executions))
            request = ListExecutionsRequest(
                flow_name=flow_name, status=status, limit=page, next_token=next_token, qualifier=qualifier
            )

            def call(c: FnFClient, rt: RuntimeOptions, request: Any = request) -> Any:
                return c.list_executions_with_options(request, rt)

            body = self._call("ListExecutions", f"flow {flow_name!r}", call)
            executions.extend(body.get("Executions") or [])
            next_token = body.get("NextToken") or None
            if not next_token or (limit is not None and len(executions) >= limit):
                return executions[:limit] if limit is not None else executions

    # --- flows -------------------------------------------------------------------------
    def create_or_update_flow(
        self,
        name: str,
        definition: str,
        *,
        description: str = "",
        role_arn: str | None = None,
        execution_mode: str | None = None,
    ) -> dict[str, Any]:
        """Create the flow, or update its definition if it exists; return it.

        ``definition`` is either generation's language (``Type`` stays ``FDL`` for both: the text
        tells them apart). ``execution_mode`` (CloudFlow): ``Standard`` (the service's default)
        or ``Express``; UpdateFlow cannot change it, so an existing flow in another mode is an
        error that says so.
        """
        from alibabacloud_fnf20190315.models import CreateFlowRequest, UpdateFlowRequest

        _check_name("flow name", name)
        if execution_mode is not None and execution_mode not in EXECUTION_MODES:
            raise FnFConfigurationError(
                f"Flow {name!r}: execution_mode must be one of {', '.join(EXECUTION_MODES)}, "
                f"got {execution_mode!r}"
            )
        create = CreateFlowRequest(
            name=name,
            definition=definition,
            description=description,
            type="FDL",
            role_arn=role_arn,
            execution_mode=execution_mode,
        )
        try:
            body = self._call(
                "CreateFlow", f"flow {name!r}", lambda c, rt: c.create_flow_with_options(create, rt)
            )
            log.info("Created Serverless Workflow flow %s", name)
            return body
        except ServerlessWorkflowError as err:
            if err.code != "FlowAlreadyExists":
                raise
        if execution_mode is not None:
            current = self.describe_flow(name).get("ExecutionMode") or EXECUTION_MODES[0]
            if current != execution_mode:
                raise FnFConfigurationError(
                    f"Flow {name!r} exists in {current} mode, not {execution_mode}: UpdateFlow cannot "
                    "change a flow's execution mode; delete the flow or choose another name"
                )
        update = UpdateFlowRequest(
            name=name, definition=definition, description=description, type="FDL", role_arn=role_arn
        )
        body = self._call(
            "UpdateFlow", f"flow {name!r}", lambda c, rt: c.update_flow_with_options(update, rt)
        )
        log.info("Updated Serverless Workflow flow %s", name)
        return body

    def describe_flow(self, name: str) -> dict[str, Any]:
        from alibabacloud_fnf20190315.models import DescribeFlowRequest

        request = DescribeFlowRequest(name=name)
        return self._call(
            "DescribeFlow", f"flow {name!r}", lambda c, rt: c.describe_flow_with_options(request, rt)
        )

    def delete_flow(self, name: str) -> None:
        from alibabacloud_fnf20190315.models import DeleteFlowRequest

        request = DeleteFlowRequest(name=name)
        self._call("DeleteFlow", f"flow {name!r}", lambda c, rt: c.delete_flow_with_options(request, rt))
        log.info("Deleted Serverless Workflow flow %s", name)

    def list_flows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Flows of the account and region; all pages, or at most ``limit``."""
        from alibabacloud_fnf20190315.models import ListFlowsRequest

        flows: list[dict[str, Any]] = []
        next_token: str | None = None
        while True:
            page = FNF_MAX_LIST_LIMIT if limit is None else min(FNF_MAX_LIST_LIMIT, limit - len(flows))
            request = ListFlowsRequest(limit=page, next_token=next_token)

            def call(c: FnFClient, rt: RuntimeOptions, request: Any = request) -> Any:
                return c.list_flows_with_options(request, rt)

            body = self._call("ListFlows", None, call)
            flows.extend(body.get("Flows") or [])
            next_token = body.get("NextToken") or None
            if not next_token or (limit is not None and len(flows) >= limit):
                return flows[:limit] if limit is not None else flows

    def test_connection(self) -> tuple[bool, str]:
        """List at most one flow with the connection's endpoint and credentials."""
        try:
            flows = self.list_flows(limit=1)
        except Exception as exc:
            return False, str(exc)
        s = self.settings
        who = self._credentials().source.describe()
        return True, (
            f"Connected to Serverless Workflow at {s.protocol}://{s.endpoint} as {who} "
            f"({len(flows)} flow(s) listed)"
        )


class _ServerlessWorkflowCredentials(SDKCredentials):
    """What the Serverless Workflow SDK takes as ``Config.credential`` (alibabacloud-credentials'
    client interface), asked on every request (see
    :class:`~airflow_provider_fnf.credentials.SDKCredentials`)."""

    unavailable_error = ServerlessWorkflowAuthenticationError

    def get_credential(self) -> Any:
        from alibabacloud_credentials.models import CredentialModel

        issued = self.issue()
        return CredentialModel(
            access_key_id=issued.access_key_id,
            access_key_secret=issued.access_key_secret,
            security_token=issued.security_token,
            type="sts" if issued.security_token else "access_key",
            provider_name=issued.provider_name,
        )

    async def get_credential_async(self) -> Any:
        return self.get_credential()

    def get_access_key_id(self) -> str:
        return self.issue().access_key_id

    def get_access_key_secret(self) -> str:
        return self.issue().access_key_secret

    def get_security_token(self) -> str | None:
        return self.issue().security_token

    def get_type(self) -> str:
        return "sts" if self.issue().security_token else "access_key"


# --- one function decides what is retryable --------------------------------------------
def is_retryable_fnf_error(exc: BaseException, *, idempotent: bool = True) -> bool:
    """True for errors worth another attempt: throttling (429 ResourceThrottled), server errors
    (5xx), 409 TaskInvalidState ("please retry") and network failures. Everything else is final.

    A call that is not ``idempotent`` (StartSyncExecution runs an Express flow each time) is
    retried only when throttled: a refused call has not run, a failed one may have."""
    if not idempotent:
        return getattr(exc, "inner_exception", None) is None and _is_throttled(exc)
    inner = getattr(exc, "inner_exception", None)
    if inner is not None:
        return _is_network_error(inner)
    code = _error_code(exc)
    status = _status_code(exc)
    if code in _RETRYABLE_CODES:
        return True
    return status is not None and (status == 429 or status >= 500)


def _is_throttled(exc: BaseException) -> bool:
    return _error_code(exc) in _THROTTLE_CODES or _status_code(exc) == 429


def _is_network_error(exc: BaseException) -> bool:
    from darabonba.exceptions import RetryError as DaraRetryError
    from Tea.exceptions import RetryError as TeaRetryError

    return isinstance(exc, (DaraRetryError, TeaRetryError, OSError))


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    return str(code) if code not in (None, "", "None") else None


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return redact_text(text)


# --- validation ---------------------------------------------------------------------------
def _check_token(task_token: str) -> str:
    if not isinstance(task_token, str) or not task_token.strip():
        raise ServerlessWorkflowInvalidTaskTokenError(
            f"Task token must be a non-empty string, got {type(task_token).__name__}"
            + (" (empty)" if isinstance(task_token, str) else "")
            + ": check where it is read from the message body"
        )
    mask_task_token(task_token)
    return task_token


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= FNF_MAX_NAME_CHARS:
        raise FnFConfigurationError(
            f"Serverless Workflow {what} must be 1..{FNF_MAX_NAME_CHARS} characters, got {name!r}"
        )

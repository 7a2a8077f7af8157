"""Airflow's own REST API (``/api/v2``), for starting DAG runs from outside a task.

:class:`AirflowAPIHook` is what :class:`~airflow_provider_fnf.triggers.dispatch.MNSDispatchTrigger`
starts worker runs with: the triggerer has no Task SDK supervisor that could start a run, so the
trigger does what an external client does, through the API server every deployment already has.

The connection (default ``airflow_api_default``, any connection type, ``http`` reads best):

- ``host`` the API server's base URL (``http://airflow-api-server:8080``), or a host name with
  ``schema`` (``http``/``https``) and ``port``;
- ``login`` and ``password`` of an Airflow user allowed to trigger the worker DAG: the hook gets a
  token from ``POST /auth/token`` (Airflow 3's simple and FAB auth managers both serve it) and a
  new one when the API answers 401;
- or extra ``{"token": "<JWT>"}``: a token issued beforehand, used as it is;
- extra ``verify`` (false, or a CA bundle's path) and ``timeout`` (seconds, default 30).

Transient failures (the API server restarting, 5xx, 429) are retried with backoff a few times;
the password and every token are masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from airflow_provider_fnf.exceptions import FnFConfigurationError, FnFProviderError
from airflow_provider_fnf.hooks._common import ConnectionSettingsHook, backoff_delay, extra_str
from airflow_provider_fnf.masking import mask_secret

DEFAULT_AIRFLOW_API_CONN_ID = "airflow_api_default"
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_ATTEMPTS = 4
"""Attempts of one API call while the answers are transient (about 3 s of backoff in all)."""
_RETRY_BASE_SECONDS = 0.5


class AirflowAPIError(FnFProviderError):
    """Airflow's REST API refused a call or could not be reached; ``status`` is the HTTP status
    (None when no answer came)."""


@dataclass(frozen=True)
class AirflowAPISettings:
    base_url: str
    login: str | None
    password: str | None
    token: str | None
    verify: bool | str
    timeout: float


class AirflowAPIHook(ConnectionSettingsHook[AirflowAPISettings]):
    """
    Start DAG runs and read their state through Airflow's REST API.

    :param airflow_api_conn_id: the connection to the API server (see the module's text).
    """

    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = DEFAULT_AIRFLOW_API_CONN_ID
    hook_name = "Airflow REST API"

    def __init__(self, airflow_api_conn_id: str = DEFAULT_AIRFLOW_API_CONN_ID) -> None:
        super().__init__()
        self.airflow_api_conn_id = airflow_api_conn_id
        self._client: httpx.Client | None = None
        self._token: str | None = None
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------------
    def _settings_from(self, conn: Any) -> AirflowAPISettings:
        where = f"Airflow API connection {self.airflow_api_conn_id!r}"
        extra: Mapping[str, Any] = conn.extra_dejson if conn.extra else {}
        host = (conn.host or "").strip().rstrip("/")
        if not host:
            raise FnFConfigurationError(
                f"{where} has no host: set it to the API server's base URL (http://host:8080)",
                conn_id=self.airflow_api_conn_id,
            )
        if "://" not in host:
            scheme = (conn.schema or "http").strip() or "http"
            host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        token = extra_str(extra, "token")
        if not token and not (conn.login and conn.password):
            raise FnFConfigurationError(
                f"{where} needs login and password of an Airflow user (or extra token)",
                conn_id=self.airflow_api_conn_id,
            )
        for secret in (conn.password, token):
            if secret:
                mask_secret(secret)
        verify: bool | str = True
        if "verify" in extra:
            raw = extra["verify"]
            verify = (
                raw
                if isinstance(raw, str) and raw.lower() not in ("true", "false")
                else str(raw).lower() != "false"
            )
        try:
            timeout = float(extra.get("timeout", DEFAULT_TIMEOUT_SECONDS))
        except (TypeError, ValueError):
            raise FnFConfigurationError(
                f"{where}: extra timeout must be a number of seconds, got {extra.get('timeout')!r}",
                conn_id=self.airflow_api_conn_id,
            ) from None
        return AirflowAPISettings(
            base_url=host,
            login=conn.login or None,
            password=conn.password or None,
            token=token,
            verify=verify,
            timeout=timeout,
        )

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            settings = self.settings
            self._client = httpx.Client(
                base_url=settings.base_url, verify=settings.verify, timeout=settings.timeout
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- auth ----------------------------------------------------------------------------------
    def _bearer(self, *, renew: bool = False) -> str:
        settings = self.settings
        if settings.token:
            return settings.token
        with self._lock:
            if self._token is None or renew:
                answer = self._send_once(
                    "POST",
                    "/auth/token",
                    json={"username": settings.login, "password": settings.password},
                    auth=False,
                )
                if answer.status_code not in (200, 201):
                    raise AirflowAPIError(
                        f"Airflow at {settings.base_url} refused the user {settings.login!r} of connection "
                        f"{self.airflow_api_conn_id!r} a token (HTTP {answer.status_code}): check its login "
                        "and password",
                        conn_id=self.airflow_api_conn_id,
                        status=answer.status_code,
                    )
                token = answer.json().get("access_token")
                if not isinstance(token, str) or not token:
                    raise AirflowAPIError(
                        f"Airflow at {settings.base_url} answered POST /auth/token without an access_token",
                        conn_id=self.airflow_api_conn_id,
                    )
                mask_secret(token)
                self._token = token
            return self._token

    # -- transport -----------------------------------------------------------------------------
    def _send_once(self, method: str, path: str, *, json: Any = None, auth: bool = True) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._bearer()}"
        try:
            return self.client.request(method, path, json=json, headers=headers)
        except httpx.HTTPError as error:
            raise AirflowAPIError(
                f"Airflow's API at {self.settings.base_url} (connection {self.airflow_api_conn_id!r}) "
                f"could not be reached for {method} {path}: {type(error).__name__}: {error}",
                conn_id=self.airflow_api_conn_id,
            ) from None

    def _send(
        self, method: str, path: str, *, json: Any = None, accept: tuple[int, ...] = ()
    ) -> httpx.Response:
        """One API call, retried while the answers are transient; an answer whose status is 2xx
        or in ``accept`` is returned, any other raises :class:`AirflowAPIError`."""
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send_once(method, path, json=json)
            except AirflowAPIError as error:
                if error.status is not None or attempt >= MAX_ATTEMPTS:
                    raise  # refused (a token denied), or unreachable for every attempt
                time.sleep(backoff_delay(attempt, base=_RETRY_BASE_SECONDS))
                continue
            status = response.status_code
            if 200 <= status < 300 or status in accept:
                return response
            if status == 401 and not renewed and not self.settings.token:
                renewed = True
                self._bearer(renew=True)  # the token expired: one new one
                continue
            if (status >= 500 or status == 429) and attempt < MAX_ATTEMPTS:
                time.sleep(backoff_delay(attempt, base=_RETRY_BASE_SECONDS))
                continue
            raise AirflowAPIError(
                f"Airflow's API at {self.settings.base_url} (connection {self.airflow_api_conn_id!r}) answered "
                f"{method} {path} with HTTP {status}: {_detail(response)}",
                conn_id=self.airflow_api_conn_id,
                resource=path,
                status=status,
            )

    # -- DAG runs ------------------------------------------------------------------------------
    def trigger_dag_run(self, dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
        """Start a run now; True when it was created, False when a run with this id exists."""
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        if note:
            body["note"] = note
        response = self._send(
            "POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", json=body, accept=(409,)
        )
        return response.status_code != 409

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        """The state of an existing run (``queued``, ``running``, ``success``, ``failed``)."""
        response = self._send(
            "GET", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        )
        return str(response.json().get("state"))


def _detail(response: httpx.Response) -> str:
    """The API's reason, without what the request sent: a validation error's ``input`` would
    repeat the run's conf, task token included, so only each error's place and text are kept."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.reason_phrase
    if isinstance(detail, str):
        return detail[:300]
    if isinstance(detail, list):
        parts = [
            f"{'.'.join(str(x) for x in item.get('loc', []))}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        ]
        return "; ".join(parts)[:300] or response.reason_phrase
    return response.reason_phrase

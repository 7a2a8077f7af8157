"""A link in the Airflow UI from a task to the Serverless Workflow or CloudFlow execution it
worked for.

The console page is either the Alibaba Cloud console (region, flow and execution) or, when the
``fnf`` connection points at a local endpoint (``127.0.0.1``, ``localhost``), the local
emulator's console page ``{endpoint}/console/flows/{flow}/executions/{execution}``. Both
generations of the service live in one console and one API, so one URL scheme serves both.
An Express execution (CloudFlow, StartSyncExecution) links to its flow's page: the service keeps
no execution history for Express flows, and its name (``{name}:{UUID}``) has no page of its own.

The operators compute the URL while they run (they know the connection, the flow and the
execution) and store it with :meth:`ServerlessWorkflowExecutionLink.persist`; the link only
reads it back, so the API server never needs the connection.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

ALIBABA_CLOUD_CONSOLE = "https://fnf.console.aliyun.com"
"""The console of both generations (Serverless Workflow, now CloudFlow). Flow pages are
``/fnf/{region}/flows/item/{flow}`` (seen in the official sample repositories); the execution page
below the flow page, ``/executions/item/{execution}``, is *unconfirmed*: it follows the console's
own ``item`` routing, and the flow page is one click away if it moves."""

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})
_REGION_IN_HOST = re.compile(r"^(?P<region>[a-z]{2}-[a-z0-9-]+?)(?:-internal)?\.fnf\.aliyuncs\.com$")


def _split_endpoint(endpoint: str | None, protocol: str | None) -> tuple[str, str] | None:
    """(scheme, host[:port]) of an ``fnf`` connection endpoint, or None when there is none."""
    if not endpoint:
        return None
    text = endpoint.strip().rstrip("/")
    if "://" in text:
        parts = urlsplit(text)
        return parts.scheme or (protocol or "https"), parts.netloc
    return (protocol or "https"), text


def _hostname(netloc: str) -> str:
    return urlsplit(f"//{netloc}").hostname or ""


def is_local_endpoint(endpoint: str | None) -> bool:
    """Whether an ``fnf`` connection endpoint points at this machine (the local emulator)."""
    split = _split_endpoint(endpoint, None)
    return bool(split) and _hostname(split[1]) in LOCAL_HOSTS  # type: ignore[index]


def serverless_workflow_console_url(
    *,
    flow_name: str,
    execution_name: str,
    region: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    express: bool = False,
) -> str:
    """The console page of one execution, or ``""`` when it cannot be known.

    - a local ``endpoint`` (the emulator): ``{scheme}://{host:port}/console/flows/{flow}/executions/{execution}``;
      a local endpoint without a scheme is taken as ``http`` unless ``protocol`` says otherwise.
    - otherwise the Alibaba Cloud console of ``region`` (read from a
      ``{region}[-internal].fnf.aliyuncs.com`` endpoint when not given).
    - ``express``: the flow's page instead (an Express execution has none of its own).
    """
    if not flow_name or not execution_name:
        return ""
    flow = quote(flow_name, safe="")
    execution = quote(execution_name, safe="")
    local_page = f"/console/flows/{flow}" + ("" if express else f"/executions/{execution}")
    cloud_page = f"/flows/item/{flow}" + ("" if express else f"/executions/item/{execution}")
    split = _split_endpoint(endpoint, protocol)
    if split is not None:
        scheme, netloc = split
        host = _hostname(netloc)
        if host in LOCAL_HOSTS:
            if "://" not in (endpoint or "") and not protocol:
                scheme = "http"
            return f"{scheme}://{netloc}{local_page}"
        if not region:
            match = _REGION_IN_HOST.match(host)
            region = match.group("region") if match else None
    if not region:
        return ""
    return f"{ALIBABA_CLOUD_CONSOLE}/fnf/{quote(region, safe='')}{cloud_page}"


def console_url_for_connection(
    fnf_conn_id: str, flow_name: str, execution_name: str, *, express: bool = False
) -> str:
    """The console URL of an execution, with the region and endpoint read from an ``fnf`` connection."""
    from airflow.sdk import BaseHook

    extra: dict[str, Any] = BaseHook.get_connection(fnf_conn_id).extra_dejson or {}
    return serverless_workflow_console_url(
        flow_name=flow_name,
        execution_name=execution_name,
        region=extra.get("region") or None,
        endpoint=extra.get("endpoint") or None,
        protocol=extra.get("protocol") or None,
        express=express,
    )


class ServerlessWorkflowExecutionLink(BaseOperatorLink):
    """The "Serverless Workflow execution" link: the console page of the execution a task reported
    to or started, in either generation (the flow's page for an Express execution). Empty until
    the task has stored it (see :meth:`persist`)."""

    name = "Serverless Workflow execution"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return value if isinstance(value, str) else ""

    @classmethod
    def persist(
        cls,
        context: Context,
        *,
        fnf_conn_id: str,
        flow_name: str | None,
        execution_name: str | None,
        express: bool = False,
    ) -> str:
        """Compute the execution's console URL and store it for the link; returns the URL.

        A connection that cannot be read gives an empty link, never a failed task: the link is
        a convenience.
        """
        url = ""
        if flow_name and execution_name:
            try:
                url = console_url_for_connection(fnf_conn_id, flow_name, execution_name, express=express)
            except Exception as err:  # the link must never fail the work it decorates
                import logging

                logging.getLogger(__name__).warning(
                    "No console link for execution %s of flow %s: connection %s unusable (%s)",
                    execution_name,
                    flow_name,
                    fnf_conn_id,
                    err,
                )
        context["ti"].xcom_push(key=cls().xcom_key, value=url)
        return url

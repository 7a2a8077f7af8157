"""Provider registration: what ``airflow providers list|hooks|behaviours|queues`` show."""

from __future__ import annotations

from typing import Any

from airflow_provider_fnf import __version__
from airflow_provider_fnf.limits import STS_MAX_SESSION_DURATION_SECONDS, STS_MIN_SESSION_DURATION_SECONDS

_PASSWORD = {"type": ["string", "null"], "format": "password"}
_STRING = {"type": ["string", "null"]}
_SESSION_SECONDS = {
    "type": ["integer", "null"],
    "minimum": STS_MIN_SESSION_DURATION_SECONDS,
    "maximum": STS_MAX_SESSION_DURATION_SECONDS,
}


def _field(label: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema or _STRING}


def _role_fields() -> dict[str, Any]:
    """The RAM role a connection assumes (both connection types), read by
    :func:`airflow_provider_fnf.credentials.role_from_connection`."""
    return {
        "role_arn": _field(
            "RAM role ARN",
            "Assume this role (acs:ram::<account id>:role/<name>) with the AccessKey above, or the default "
            "chain when empty; typically the role of the account that owns the queue and the flow.",
        ),
        "role_session_name": _field(
            "Role session name",
            "Shown in the role account's audit log; default airflow-<dag id>-<task id> in a task, "
            "airflow-<connection id> elsewhere.",
        ),
        "external_id": _field(
            "External ID", "The sts:ExternalId the role's trust policy requires, if it requires one."
        ),
        "session_duration": _field(
            "Session duration (s)",
            f"{STS_MIN_SESSION_DURATION_SECONDS}..{STS_MAX_SESSION_DURATION_SECONDS}, at most the role's "
            "maximum session duration; default 3600. Sessions are renewed before they expire.",
            _SESSION_SECONDS,
        ),
        "policy": _field(
            "Inline session policy",
            "Optional RAM policy document (JSON) that narrows the role's permissions.",
        ),
        "sts_endpoint": _field(
            "STS endpoint",
            "host[:port] or https://host[:port] (HTTPS only), e.g. sts-vpc.cn-hangzhou.aliyuncs.com or the "
            "local emulator's; default from the STS region, else sts.aliyuncs.com.",
        ),
        "sts_region": _field("STS region", "Region of the STS endpoint, e.g. cn-hangzhou."),
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-fnf",
        "name": "Alibaba Cloud Serverless Workflow (FnF) and Simple Message Queue (MNS)",
        "description": (
            "Makes Airflow the worker fleet of Alibaba Cloud Serverless Workflow and CloudFlow: MNS "
            "sensors and triggers start DAG runs from waitForCallback / WaitForCustomCallback task "
            "messages, and operators report the task token's result back."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "external-doc-url": "https://www.alibabacloud.com/help/en/mns/",
                "tags": ["alibaba"],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "external-doc-url": "https://www.alibabacloud.com/help/en/serverless-workflow/",
                "tags": ["alibaba"],
            },
        ],
        "hooks": [
            {
                "integration-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "python-modules": ["airflow_provider_fnf.hooks.mns", "airflow_provider_fnf.hooks.airflow_api"],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "python-modules": ["airflow_provider_fnf.hooks.fnf"],
            },
        ],
        "sensors": [
            {
                "integration-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "python-modules": ["airflow_provider_fnf.sensors.mns"],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "python-modules": ["airflow_provider_fnf.sensors.fnf"],
            },
        ],
        "operators": [
            {
                "integration-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "python-modules": [
                    "airflow_provider_fnf.operators.mns",
                    "airflow_provider_fnf.operators.dispatch",
                ],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "python-modules": ["airflow_provider_fnf.operators.fnf"],
            },
        ],
        "triggers": [
            {
                "integration-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "python-modules": ["airflow_provider_fnf.triggers.mns", "airflow_provider_fnf.triggers.dispatch"],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "python-modules": ["airflow_provider_fnf.triggers.fnf"],
            },
        ],
        "task-decorators": [
            {"name": "fnf_callback", "class-name": "airflow_provider_fnf.decorators.fnf.fnf_callback_task"}
        ],
        "queues": ["airflow_provider_fnf.queues.mns.MNSMessageQueueProvider"],
        "extra-links": ["airflow_provider_fnf.links.fnf.ServerlessWorkflowExecutionLink"],
        "connection-types": [
            {
                "connection-type": "mns",
                "hook-class-name": "airflow_provider_fnf.hooks.mns.MNSHook",
                "hook-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "host", "extra"],
                    "relabeling": {"login": "AccessKey ID", "password": "AccessKey Secret"},
                    "placeholders": {
                        "login": "leave empty to use the default credentials chain",
                        "endpoint": "http://127.0.0.1:9911 (local emulator) or leave empty",
                        "account_id": "1234567890123456",
                        "region": "cn-hangzhou",
                        "role_arn": "acs:ram::1234567890123456:role/airflow-worker (optional)",
                    },
                },
                "conn-fields": {
                    "endpoint": _field(
                        "Endpoint",
                        "Whole endpoint, http(s)://host[:port]. Overrides account id and region "
                        "(local emulator, VPC endpoints).",
                    ),
                    "account_id": _field("Account ID", "Alibaba Cloud account id (builds the endpoint)."),
                    "region": _field("Region", "Region id such as cn-hangzhou (builds the endpoint)."),
                    "security_token": _field(
                        "STS security token", "Optional STS token for temporary credentials.", _PASSWORD
                    ),
                    **_role_fields(),
                },
            },
            {
                "connection-type": "fnf",
                "hook-class-name": "airflow_provider_fnf.hooks.fnf.ServerlessWorkflowHook",
                "hook-name": "Alibaba Cloud Serverless Workflow",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "host", "extra"],
                    "relabeling": {"login": "AccessKey ID", "password": "AccessKey Secret"},
                    "placeholders": {
                        "login": "leave empty to use the default credentials chain",
                        "region": "cn-hangzhou",
                        "endpoint": "127.0.0.1:9912 (local emulator) or leave empty",
                        "protocol": "https",
                        "role_arn": "acs:ram::1234567890123456:role/airflow-worker (optional)",
                        "service": "serverless_workflow",
                    },
                },
                "conn-fields": {
                    "region": _field("Region", "Region id such as cn-hangzhou."),
                    "endpoint": _field(
                        "Endpoint",
                        "host[:port] override, e.g. the local emulator or cn-hangzhou-internal.fnf.aliyuncs.com.",
                    ),
                    "protocol": _field("Protocol", "https (default) or http (local emulator)."),
                    "security_token": _field(
                        "STS security token", "Optional STS token for temporary credentials.", _PASSWORD
                    ),
                    **_role_fields(),
                    "service": _field(
                        "Service generation",
                        "serverless_workflow (default: 32 KiB Output and Input, accepted by both) or "
                        "cloudflow (64 KiB): the limits checked before each call.",
                    ),
                },
            },
        ],
    }

"""Provider registration: what ``airflow providers list|hooks|behaviours|queues`` show."""

from __future__ import annotations

from typing import Any

from airflow_provider_fnf import __version__

_PASSWORD = {"type": ["string", "null"], "format": "password"}
_STRING = {"type": ["string", "null"]}


def _field(label: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": schema or _STRING}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-fnf",
        "name": "Alibaba Cloud Serverless Workflow (FnF) and Simple Message Queue (MNS)",
        "description": (
            "Makes Airflow the worker fleet of Alibaba Cloud Serverless Workflow: MNS sensors and "
            "triggers start DAG runs from waitForCallback task messages, and operators report the "
            "task token's result back."
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
                "python-modules": ["airflow_provider_fnf.hooks.mns"],
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
                "python-modules": ["airflow_provider_fnf.operators.mns", "airflow_provider_fnf.operators.dispatch"],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "python-modules": ["airflow_provider_fnf.operators.fnf"],
            },
        ],
        "triggers": [
            {
                "integration-name": "Alibaba Cloud Simple Message Queue (MNS)",
                "python-modules": ["airflow_provider_fnf.triggers.mns"],
            },
            {
                "integration-name": "Alibaba Cloud Serverless Workflow",
                "python-modules": ["airflow_provider_fnf.triggers.fnf"],
            },
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
                },
            },
        ],
    }

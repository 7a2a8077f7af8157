"""The console URL of an execution: the local emulator's page or the Alibaba Cloud console."""

from __future__ import annotations

import pytest

from airflow_provider_fnf.links.fnf import is_local_endpoint, serverless_workflow_console_url


@pytest.mark.parametrize(
    ("kwargs", "url"),
    [
        (
            {"endpoint": "127.0.0.1:9912"},
            "http://127.0.0.1:9912/console/flows/orders/executions/run%201",
        ),
        (
            {"endpoint": "http://localhost:9912/", "region": "cn-hangzhou"},
            "http://localhost:9912/console/flows/orders/executions/run%201",
        ),
        (
            {"endpoint": "127.0.0.1:9912", "protocol": "https"},
            "https://127.0.0.1:9912/console/flows/orders/executions/run%201",
        ),
        (
            {"region": "cn-shanghai"},
            "https://fnf.console.aliyun.com/fnf/cn-shanghai/flows/item/orders/executions/item/run%201",
        ),
        (
            {"endpoint": "cn-beijing-internal.fnf.aliyuncs.com"},
            "https://fnf.console.aliyun.com/fnf/cn-beijing/flows/item/orders/executions/item/run%201",
        ),
        ({"endpoint": "fnf.example.internal:443"}, ""),
        ({}, ""),
    ],
)
def test_console_url(kwargs, url):
    assert serverless_workflow_console_url(flow_name="orders", execution_name="run 1", **kwargs) == url


def test_no_url_without_names():
    assert serverless_workflow_console_url(flow_name="", execution_name="e", region="cn-hangzhou") == ""


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("127.0.0.1:1", True),
        ("http://localhost", True),
        ("cn-hangzhou.fnf.aliyuncs.com", False),
        (None, False),
    ],
)
def test_is_local_endpoint(endpoint, local):
    assert is_local_endpoint(endpoint) is local


@pytest.mark.parametrize(
    ("kwargs", "url"),
    [
        ({"endpoint": "127.0.0.1:9912"}, "http://127.0.0.1:9912/console/flows/orders"),
        ({"region": "cn-hangzhou"}, "https://fnf.console.aliyun.com/fnf/cn-hangzhou/flows/item/orders"),
    ],
)
def test_an_express_execution_links_to_its_flow(kwargs, url):
    name = "quote:5b0c6f4e-7b1d-4a53-9d38-0f2f1c3e9a10"  # StartSyncExecution's {name}:{UUID}
    assert (
        serverless_workflow_console_url(flow_name="orders", execution_name=name, express=True, **kwargs)
        == url
    )


def test_a_standard_execution_name_is_quoted_in_the_url():
    url = serverless_workflow_console_url(flow_name="orders", execution_name="a:b/c", region="cn-hangzhou")
    assert url.endswith("/flows/item/orders/executions/item/a%3Ab%2Fc")

"""AirflowAPIHook's connection: the base URL in its forms, the credentials it needs, named errors."""

from __future__ import annotations

import json

import pytest
from airflow.models import Connection

from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.hooks.airflow_api import AirflowAPIHook


def settings(**fields):
    hook = AirflowAPIHook("airflow_api_test")
    extra = fields.pop("extra", None)
    conn = Connection(
        conn_id="airflow_api_test", conn_type="http", extra=json.dumps(extra) if extra else None, **fields
    )
    return hook._settings_from(conn)


def test_a_url_host_is_the_base_url():
    s = settings(host="https://airflow.example:8443/", login="bot", password="pw")
    assert s.base_url == "https://airflow.example:8443"
    assert (s.login, s.password, s.token, s.verify, s.timeout) == ("bot", "pw", None, True, 30.0)


def test_a_host_name_takes_schema_and_port():
    assert (
        settings(host="api-server", port=8080, login="bot", password="pw").base_url
        == "http://api-server:8080"
    )
    assert settings(host="api", schema="https", login="b", password="p").base_url == "https://api"


def test_a_token_in_extra_needs_no_login():
    s = settings(host="http://api:8080", extra={"token": "jwt", "verify": "false", "timeout": 5})
    assert (s.token, s.verify, s.timeout) == ("jwt", False, 5.0)
    assert settings(host="http://api", extra={"token": "t", "verify": "/ca.pem"}).verify == "/ca.pem"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"login": "bot", "password": "pw"}, "has no host"),
        ({"host": "http://api:8080", "login": "bot"}, "needs login and password"),
        (
            {"host": "http://api", "login": "b", "password": "p", "extra": {"timeout": "soon"}},
            "timeout must be",
        ),
    ],
)
def test_what_is_missing_is_named_with_the_connection(fields, fragment):
    with pytest.raises(FnFConfigurationError, match=fragment) as error:
        settings(**fields)
    assert "airflow_api_test" in str(error.value)


def test_an_error_detail_never_repeats_what_was_sent():
    import httpx

    from airflow_provider_fnf.hooks.airflow_api import _detail

    validation = httpx.Response(
        422,
        json={
            "detail": [
                {"loc": ["body", "conf"], "msg": "Input should be a valid dictionary", "input": "TOKEN-abc"}
            ]
        },
    )
    assert _detail(validation) == "body.conf: Input should be a valid dictionary"
    assert _detail(httpx.Response(404, json={"detail": "The Dag with ID: `w` was not found"})) == (
        "The Dag with ID: `w` was not found"
    )
    assert _detail(httpx.Response(502, text="<html>bad gateway</html>")) == "Bad Gateway"

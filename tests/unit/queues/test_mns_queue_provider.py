"""MNSMessageQueueProvider behind common-messaging's MessageQueueTrigger."""

from __future__ import annotations

import importlib
import json
import warnings

import pytest
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

from airflow_provider_fnf.queues.mns import MNSMessageQueueProvider
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger


def test_provider_is_registered_with_airflow():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_queues()
    assert "airflow_provider_fnf.queues.mns.MNSMessageQueueProvider" in manager.queue_class_names


def test_scheme_mns_builds_our_trigger_with_the_same_arguments():
    trigger = MessageQueueTrigger(
        scheme="mns", queue_name="fnf-tasks", mns_conn_id="mns_x", lease_seconds=600
    )

    assert isinstance(trigger.trigger, MNSMessageTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_fnf.triggers.mns.MNSMessageTrigger"
    assert (kwargs["queue_name"], kwargs["mns_conn_id"], kwargs["lease_seconds"]) == (
        "fnf-tasks",
        "mns_x",
        600,
    )
    # What the triggerer stores and rebuilds: the round trip holds through the wrapper too.
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


def test_scheme_matching_is_specific():
    provider = MNSMessageQueueProvider()
    assert provider.scheme_matches("mns")
    assert not provider.scheme_matches("sqs") and not provider.scheme_matches("mns+x")
    assert provider.trigger_class() is MNSMessageTrigger


def test_deprecated_queue_uri_form():
    provider = MNSMessageQueueProvider()
    assert provider.queue_matches("mns://fnf-tasks")
    assert not provider.queue_matches("sqs://fnf-tasks")
    assert provider.trigger_kwargs("mns://fnf-tasks?mns_conn_id=mns_x") == {
        "queue_name": "fnf-tasks",
        "mns_conn_id": "mns_x",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trigger = MessageQueueTrigger(queue="mns://fnf-tasks")
    assert trigger.serialize()[1]["queue_name"] == "fnf-tasks"


@pytest.mark.parametrize("uri", ["mns://", "mns://a/b", "mns://q?region=x", "http://q"])
def test_bad_queue_uris_are_named(uri):
    with pytest.raises(ValueError, match="MNS queue URI"):
        MNSMessageQueueProvider().trigger_kwargs(uri)

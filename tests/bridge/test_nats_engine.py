"""The bridge's NATS engine without a server: its config, the subject mapping and the publisher's refusals.
The engine against a real 3-node cluster is tests/scale/test_nats_bridge.py."""

from __future__ import annotations

import concurrent.futures

import pytest

from cloud_bridge.config import ConfigError, parse
from cloud_bridge.nats_engine import NatsPublisher, Sent, subject_of

MQTT = {"host": "127.0.0.1"}


def test_mosquitto_is_the_default_and_nats_needs_its_servers() -> None:
    assert parse({"mqtt": MQTT}, environ={}).broker.engine == "mosquitto"
    nats = parse({"mqtt": MQTT, "broker": {"engine": "nats", "nats_servers": ["nats://10.0.0.1:4222"]}}, environ={})
    assert (nats.broker.engine, nats.broker.nats_servers, nats.broker.nats_workers) == (
        "nats", ["nats://10.0.0.1:4222"], 2)
    with pytest.raises(ConfigError, match="engine nats needs nats_servers"):
        parse({"mqtt": MQTT, "broker": {"engine": "nats"}}, environ={})
    with pytest.raises(ConfigError, match="not a nats:// or tls:// URL: http://x"):
        parse({"mqtt": MQTT, "broker": {"engine": "nats", "nats_servers": ["http://x"]}}, environ={})
    with pytest.raises(ConfigError, match=r"broker\.engine"):
        parse({"mqtt": MQTT, "broker": {"engine": "kafka"}}, environ={})
    with pytest.raises(ConfigError, match="Extra inputs"):
        parse({"mqtt": MQTT, "broker": {"engine": "nats", "nats_servers": ["nats://a:1"], "url": "x"}}, environ={})


def test_the_engine_can_be_chosen_from_the_environment() -> None:
    config = parse({"mqtt": MQTT}, environ={"INVIGIL_BRIDGE__BROKER__ENGINE": "nats",
                                            "INVIGIL_BRIDGE__BROKER__NATS_SERVERS": '["nats://a:4222","nats://b:4222"]'})
    assert config.broker.nats_servers == ["nats://a:4222", "nats://b:4222"]


def test_topics_map_to_subjects() -> None:
    assert subject_of("invigil/v1/dev/unit-1/cmd/receipt") == "invigil.v1.dev.unit-1.cmd.receipt"
    assert subject_of("invigil/v1/proctor/math-101/alerts") == "invigil.v1.proctor.math-101.alerts"


def test_a_publish_counts_as_sent_only_once_jetstream_acknowledged_it() -> None:
    pending, failed, done = (concurrent.futures.Future[None]() for _ in range(3))
    failed.set_exception(TimeoutError("no ack"))
    done.set_result(None)
    assert [Sent(f).is_published() for f in (pending, failed, done)] == [False, False, True]


def test_the_publisher_refuses_while_not_connected_and_has_no_retained_to_clear() -> None:
    publisher = NatsPublisher(["nats://127.0.0.1:1"])  # never started
    with pytest.raises(ConnectionError):
        publisher.publish("invigil/v1/dev/unit-1/cmd/session_stop", b"x", 1, False)
    assert publisher.publish("invigil/v1/dev/unit-1/cmd/session_start", b"", 1, True) is None  # nothing kept on NATS
    publisher.stop()

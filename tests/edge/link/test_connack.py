"""Refused CONNACKs: which say the broker will not take this unit's credentials (MQTT 5 reason codes, and MQTT
3.1.1 return codes as paho hands them over), and a refusal logged and reported once per change."""

from __future__ import annotations

import logging

import pytest
from paho.mqtt.client import convert_connack_rc_to_reason_code
from paho.mqtt.enums import ConnackCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge_app.link.connack import Refusal, RefusalState, classify, describe


def v5(code: int) -> ReasonCode:
    return ReasonCode(PacketTypes.CONNACK, identifier=code)


@pytest.mark.parametrize("reason, expected", [
    (v5(0x00), None),  # Success
    (v5(0x86), Refusal.CREDENTIALS),  # Bad user name or password
    (v5(0x87), Refusal.CREDENTIALS),  # Not authorized: a revoked unit's account is gone
    (v5(0x8A), Refusal.CREDENTIALS),  # Banned
    (v5(0x8C), Refusal.CREDENTIALS),  # Bad authentication method
    (v5(0x80), Refusal.OTHER),  # Unspecified error
    (v5(0x84), Refusal.OTHER),  # Unsupported protocol version
    (v5(0x85), Refusal.OTHER),  # Client identifier not valid
    (v5(0x88), Refusal.OTHER),  # Server unavailable
    (v5(0x89), Refusal.OTHER),  # Server busy
    (v5(0x97), Refusal.OTHER),  # Quota exceeded
    (v5(0x9F), Refusal.OTHER),  # Connection rate exceeded
    # MQTT 3.1.1 return codes, as paho's callbacks (API version 2) give them
    (convert_connack_rc_to_reason_code(ConnackCode.CONNACK_ACCEPTED), None),
    (convert_connack_rc_to_reason_code(ConnackCode.CONNACK_REFUSED_PROTOCOL_VERSION), Refusal.OTHER),
    (convert_connack_rc_to_reason_code(ConnackCode.CONNACK_REFUSED_IDENTIFIER_REJECTED), Refusal.OTHER),
    (convert_connack_rc_to_reason_code(ConnackCode.CONNACK_REFUSED_SERVER_UNAVAILABLE), Refusal.OTHER),
    (convert_connack_rc_to_reason_code(ConnackCode.CONNACK_REFUSED_BAD_USERNAME_PASSWORD), Refusal.CREDENTIALS),
    (convert_connack_rc_to_reason_code(ConnackCode.CONNACK_REFUSED_NOT_AUTHORIZED), Refusal.CREDENTIALS),
    # ... and as bare return codes
    (0, None), (1, Refusal.OTHER), (2, Refusal.OTHER), (3, Refusal.OTHER), (4, Refusal.CREDENTIALS),
    (5, Refusal.CREDENTIALS),
])
def test_a_connack_is_accepted_refused_for_the_credentials_or_refused_otherwise(
        reason: ReasonCode | int, expected: Refusal | None) -> None:
    assert classify(reason) is expected


def test_the_reason_is_described_in_paho_words() -> None:
    assert describe(v5(0x87)) == "Not authorized"
    assert describe(convert_connack_rc_to_reason_code(ConnackCode.CONNACK_REFUSED_BAD_USERNAME_PASSWORD)) == \
        "Bad user name or password"
    assert describe(5) == "return code 5"


def test_a_refusal_is_logged_and_reported_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    reports: list[str | None] = []
    state = RefusalState("unit-7", 300.0, reports.append)
    with caplog.at_level(logging.DEBUG, logger="edge_app.link.connack"):
        assert state.connack(v5(0x88)) is Refusal.OTHER  # a busy broker: logged, not reported
        assert state.connack(v5(0x88)) is Refusal.OTHER
        for _ in range(5):
            assert state.connack(v5(0x87)) is Refusal.CREDENTIALS
        assert state.credentials == "Not authorized"
        assert state.connack(v5(0x86)) is Refusal.CREDENTIALS  # another reason: a change
        assert state.connack(v5(0x00)) is None
        assert state.connack(v5(0x00)) is None
    assert reports == ["Not authorized", "Bad user name or password", None]
    assert state.credentials is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "MQTT link unit-7: broker refused the connection: Server unavailable",
        "MQTT link unit-7: broker refused the connection: Not authorized; this unit's credentials (revoked, or a "
        "wrong password): retries up to 300 s apart",
        "MQTT link unit-7: broker refused the connection: Bad user name or password; this unit's credentials "
        "(revoked, or a wrong password): retries up to 300 s apart"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == \
        ["MQTT link unit-7: the broker accepts the connection again"]


def test_a_failing_report_never_stops_the_link(caplog: pytest.LogCaptureFixture) -> None:
    def report(_reason: str | None) -> None:
        raise RuntimeError("the page is gone")

    state = RefusalState("unit-7", 60.0, report)
    with caplog.at_level(logging.ERROR, logger="edge_app.link.connack"):
        assert state.connack(v5(0x87)) is Refusal.CREDENTIALS
    assert state.credentials == "Not authorized" and "the refusal was not reported" in caplog.text

"""How the link opens and closes an MQTT connection, in MQTT 5 or 3.1.1 (``MqttLinkConfig.protocol``).

Both versions keep a persistent session (commands sent while the unit is away wait at the broker), carry the
same retained ``offline`` last will at QoS 1 and use the same topics. MQTT 5 adds its properties: the
session's expiry and the will's delay. MQTT 3.1.1 has neither (clean session off, the broker's own session
limit; the will goes out as soon as the connection is lost) and no DISCONNECT that asks for the will, so a
unit that could not get its ``offline`` acknowledged drops the socket instead.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_app.link.config import MqttLinkConfig
from edge_app.protocol.transport import new_client, status_payload


class Client311(mqtt.Client):
    """paho's client speaking MQTT 3.1.1 with a persistent session (clean session off)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.update(protocol=MQTTProtocolVersion.MQTTv311, clean_session=False)
        super().__init__(*args, **kwargs)


def link_client(config: MqttLinkConfig, device_id: str, status_topic: str) -> mqtt.Client:
    """A paho client of ``config.protocol`` with its credentials, TLS and retained ``offline`` last will set."""
    v5 = config.protocol == "5"
    client = new_client(config, device_id) if v5 else new_client(config, device_id, Client311)
    will = None
    if v5:
        will = Properties(PacketTypes.WILLMESSAGE)
        will.WillDelayInterval = config.will_delay  # a broker restart or a short outage raises no offline alarm
    client.will_set(status_topic, status_payload("offline"), qos=1, retain=True, properties=will)
    return client


def connect(client: mqtt.Client, config: MqttLinkConfig) -> None:
    """Start connecting, resuming the persistent session (OSError or ValueError if it cannot start)."""
    if config.protocol != "5":
        client.connect(config.host, config.port, config.keepalive)  # clean session off: set on the client
        return
    session = Properties(PacketTypes.CONNECT)
    session.SessionExpiryInterval = config.session_expiry  # commands sent while away wait at the broker
    client.connect(config.host, config.port, config.keepalive, clean_start=False, properties=session)


def disconnect(client: mqtt.Client, config: MqttLinkConfig, offline_acked: bool) -> None:
    """End the connection; without ``offline_acked`` the broker is still told to publish the last will."""
    if offline_acked:
        client.disconnect()
    elif config.protocol == "5":
        client.disconnect(ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    else:  # MQTT 3.1.1: only a connection lost without DISCONNECT publishes the will
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # paho notices the lost connection and closes it

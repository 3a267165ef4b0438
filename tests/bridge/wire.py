"""A bare MQTT 5 publisher over a socket, for tests that must stop a QoS 2 exchange at a chosen packet (paho
always answers a PUBREC with a PUBREL): CONNECT, PUBLISH, PUBREL, and read what the broker sends back."""

from __future__ import annotations

import socket
import struct

CONNACK, PUBREC, PUBCOMP = 0x20, 0x50, 0x70


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str16(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class Wire:
    """One connection of client ``client_id`` with a persistent session (clean start off, an hour's expiry)."""

    def __init__(self, port: int, client_id: str, clean_start: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        properties = b"\x11" + struct.pack("!I", 0 if clean_start else 3600)  # session expiry interval
        variable = _str16("MQTT") + bytes([5, 0x02 if clean_start else 0x00]) + struct.pack("!H", 60)
        self._send(0x10, variable + _varint(len(properties)) + properties + _str16(client_id))
        kind, body = self.read()
        assert kind == CONNACK and body[1] == 0, (kind, body)
        self.session_present = bool(body[0] & 1)

    def _send(self, header: int, body: bytes) -> None:
        self.sock.sendall(bytes([header]) + _varint(len(body)) + body)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def read(self) -> tuple[int, bytes]:
        """The next packet: (its type, high nibble; its body)."""
        header = self._exact(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._exact(1)[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return header & 0xF0, self._exact(length)

    def publish(self, mid: int, topic: str, payload: bytes, dup: bool = False) -> None:
        """A QoS 2 PUBLISH with packet id ``mid``."""
        self._send(0x34 | (0x08 if dup else 0), _str16(topic) + struct.pack("!H", mid) + b"\x00" + payload)

    def pubrel(self, mid: int) -> None:
        self._send(0x62, struct.pack("!H", mid))

    def expect(self, kind: int, mid: int) -> int:
        """Read a PUBREC or PUBCOMP for ``mid``; its reason code (0 when left out)."""
        got, body = self.read()
        assert got == kind and struct.unpack("!H", body[:2])[0] == mid, (got, body)
        return body[2] if len(body) > 2 else 0

    def drop(self) -> None:
        """Close the socket without a DISCONNECT (a process that died): the session stays."""
        self.sock.close()

"""A small asyncio MQTT 3.1.1 client for the simulator: thousands of units in one process, one socket each.

paho runs a thread per client; a thousand units would be a thousand threads. This client speaks just what a
unit needs (CONNECT with a will, PUBLISH at QoS 0/1 with PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT) over one
asyncio stream each. MQTT 3.1.1, not 5, because it is what every broker here speaks: NATS's MQTT gateway
refuses version 5 at CONNECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

OnMessage = Callable[[str, bytes, bool], None]  # topic, payload, retain
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14


class MqttError(ConnectionError):
    """The broker refused or dropped the connection."""


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    length, out = len(body), bytearray([kind << 4 | flags])
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out) + body


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Client:
    """One MQTT 3.1.1 connection; ``await Client.connect(...)``, then ``publish``, ``subscribe``, ``close``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_message: OnMessage | None) -> None:
        self.reader, self.writer, self.on_message = reader, writer, on_message
        self._mid = 0
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, host: str, port: int, client_id: str, *, clean: bool = True, will: Will | None = None,
                      keepalive: int = 60, on_message: OnMessage | None = None, timeout: float = 10.0) -> Client:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        flags = 0x02 if clean else 0
        payload = _string(client_id)
        if will is not None:
            flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
            payload += _string(will.topic) + _string(will.payload)
        writer.write(_packet(CONNECT, 0, _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload))
        client = cls(reader, writer, on_message)
        try:
            kind, _flags, body = await asyncio.wait_for(client._read(), timeout)
        except (asyncio.IncompleteReadError, OSError) as exc:
            writer.close()
            raise MqttError(f"{client_id}: connection closed before CONNACK: {exc!r}") from None
        if kind != CONNACK or len(body) < 2 or body[1] != 0:
            writer.close()
            code = body[1] if len(body) > 1 else "?"
            raise MqttError(f"{client_id}: connection refused (packet {kind}, code {code})")
        client._reader_task = asyncio.create_task(client._read_loop())
        client._ping_task = asyncio.create_task(client._ping(keepalive))
        return client

    async def _read(self) -> tuple[int, int, bytes]:
        head = await self.reader.readexactly(1)
        length, shift = 0, 0
        while True:
            byte = (await self.reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return head[0] >> 4, head[0] & 0x0F, await self.reader.readexactly(length)

    async def _read_loop(self) -> None:
        error: BaseException | None = None
        try:
            while True:
                kind, flags, body = await self._read()
                if kind == PUBLISH:
                    self._received(flags, body)
                elif kind in (PUBACK, SUBACK):
                    mid = struct.unpack("!H", body[:2])[0]
                    future = self._waiting.pop(mid, None)
                    if future is not None and not future.done():
                        future.set_result(body[2] if kind == SUBACK and len(body) > 2 else 0)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            error = exc
        finally:
            lost = MqttError(f"connection lost: {error!r}")
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(lost)
            self._waiting.clear()
            if not self.closed.done():
                self.closed.set_result(None)

    def _received(self, flags: int, body: bytes) -> None:
        size = struct.unpack("!H", body[:2])[0]
        topic, rest, qos = body[2:2 + size].decode(), body[2 + size:], flags >> 1 & 3
        if qos:
            self.writer.write(_packet(PUBACK, 0, rest[:2]))
            rest = rest[2:]
        if self.on_message is not None:
            with contextlib.suppress(Exception):  # a callback's bug must not end the connection
                self.on_message(topic, rest, bool(flags & 1))

    async def _ping(self, keepalive: int) -> None:
        while not self.closed.done():
            await asyncio.sleep(keepalive / 2)
            with contextlib.suppress(OSError, RuntimeError):
                self.writer.write(_packet(PINGREQ, 0, b""))

    def _next_mid(self) -> int:
        self._mid = self._mid % 65_535 + 1
        return self._mid

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Send; at QoS 1 return on the broker's PUBACK (MqttError if the connection goes first)."""
        if self.closed.done():
            raise MqttError("connection lost")
        flags = qos << 1 | int(retain)
        if not qos:
            self.writer.write(_packet(PUBLISH, flags, _string(topic) + payload))
            return
        mid = self._next_mid()
        future = self._waiting[mid] = asyncio.get_running_loop().create_future()
        self.writer.write(_packet(PUBLISH, flags, _string(topic) + struct.pack("!H", mid) + payload))
        await future

    async def subscribe(self, topics: list[str], qos: int = 1) -> int:
        """Subscribe; the first granted QoS (0x80: refused)."""
        mid = self._next_mid()
        future = self._waiting[mid] = asyncio.get_running_loop().create_future()
        body = struct.pack("!H", mid) + b"".join(_string(topic) + bytes([qos]) for topic in topics)
        self.writer.write(_packet(SUBSCRIBE, 2, body))
        return await asyncio.wait_for(future, 10.0)

    async def close(self, graceful: bool = True) -> None:
        """DISCONNECT (no will) when ``graceful``; otherwise drop the socket (the broker sends the will)."""
        with contextlib.suppress(OSError, RuntimeError):
            if graceful and not self.closed.done():
                self.writer.write(_packet(DISCONNECT, 0, b""))
                await self.writer.drain()
            self.writer.close()
        for task in (self._ping_task, self._reader_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

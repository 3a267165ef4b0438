"""A loopback TCP proxy whose network can be cut and restored (asyncio, in a thread of its own).

``cut()`` models a network that stops carrying packets: nothing is forwarded either way and a close is not
passed on, so both ends find out only from their own timeouts (MQTT keepalive, CONNACK wait), as behind a
dead router; bytes already read wait in the proxy (TCP would keep retransmitting them). ``restore()`` lets
traffic flow again: connections both ends still hold carry on, the others are closed. ``reset()`` closes
every connection at once (a reset, not a silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

CHUNK = 65536
CONNECT_SECONDS = 5.0


class Proxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port`` until :meth:`close`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))  # bound now: nobody takes the port meanwhile
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0  # connections taken so far (each connection attempt of a client)
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()  # set while the network carries traffic
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy-{self.port}", daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._start())
        return self

    def cut(self) -> None:
        """The network stops: nothing passes either way, not even a close, until :meth:`restore`."""
        self._call(self._gate(False))

    def restore(self) -> None:
        self._call(self._gate(True))

    def reset(self) -> None:
        """Close every relayed connection now (both ends see the connection drop)."""
        self._call(self._close_all())

    @property
    def is_cut(self) -> bool:
        return not self._open.is_set()

    def close(self) -> None:
        if not self._thread.is_alive():
            self._listener.close()
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONNECT_SECONDS)
        self._loop.close()

    def _call(self, work: object) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(CONNECT_SECONDS * 2)  # type: ignore[arg-type]

    async def _gate(self, open_: bool) -> None:
        if open_:
            self._open.set()
        else:
            self._open.clear()

    async def _start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._relay, sock=self._listener)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_all()
        relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _close_all(self) -> None:
        writers, self._writers = list(self._writers), set()
        for writer in writers:
            writer.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(client_writer)
        await self._open.wait()  # a connection attempt during a cut hangs, as a SYN that gets no answer
        try:
            broker_reader, broker_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.target_port), CONNECT_SECONDS)
        except (OSError, TimeoutError):
            self._writers.discard(client_writer)
            client_writer.close()
            return
        self._writers.add(broker_writer)
        await asyncio.gather(self._pump(client_reader, broker_writer, client_writer),
                             self._pump(broker_reader, client_writer, broker_writer))

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    source_writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await source.read(CHUNK):
                await self._open.wait()
                if sink.is_closing():
                    break
                sink.write(data)
                await sink.drain()
        await self._open.wait()  # a close (or a reset) is not passed on while the network is cut
        for writer in (sink, source_writer):
            self._writers.discard(writer)
            writer.close()

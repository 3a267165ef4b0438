"""The fault suite's loopback proxy: relays both ways; a cut holds traffic (and connection attempts) without
closing anything, and a restore lets what was held through; a reset closes every connection."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from tools.faults.proxy import Proxy

HELD = 0.3  # how long the test listens for bytes that must not come through a cut


@pytest.fixture
def echo() -> Iterator[int]:
    """A loopback echo server's port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()


@pytest.fixture
def proxy(echo: int) -> Iterator[Proxy]:
    relay = Proxy(echo).start()
    yield relay
    relay.close()


def connect(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.sendall(b"hello")
    assert sock.recv(5) == b"hello"
    return sock


def test_a_cut_holds_the_bytes_and_a_restore_delivers_them(proxy: Proxy) -> None:
    sock = connect(proxy)
    proxy.cut()
    assert proxy.is_cut
    sock.sendall(b"during the cut")
    sock.settimeout(HELD)
    with pytest.raises(TimeoutError):
        sock.recv(100)  # nothing passes, and the connection is not closed either
    proxy.restore()
    sock.settimeout(5)
    assert sock.recv(100) == b"during the cut"
    sock.close()


def test_a_connection_attempt_during_a_cut_gets_through_after_the_restore(proxy: Proxy) -> None:
    proxy.cut()
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=HELD)
    sock.sendall(b"knock")
    with pytest.raises(TimeoutError):
        sock.recv(100)
    proxy.restore()
    sock.settimeout(5)
    assert sock.recv(100) == b"knock" and proxy.accepted == 1
    sock.close()


def test_a_reset_closes_every_connection(proxy: Proxy) -> None:
    socks = [connect(proxy), connect(proxy)]
    proxy.reset()
    for sock in socks:
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""  # closed by the proxy
        sock.close()
    connect(proxy).close()  # new connections are relayed again

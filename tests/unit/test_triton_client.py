"""The local MME's HTTP client to Triton: kept-alive connections per thread, and all of them closed
before Triton is stopped (an open one holds Triton's shutdown for --exit-timeout-secs, and a
Triton that gives up waiting exits without removing its Python backend's /tmp directories)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from mmedeploy.local.mme.triton import TritonClient

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class KeepAliveServer:
    """Answers every request on a connection until the client closes it; records each close."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.closed = threading.Semaphore(0)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    self.closed.release()
                    return
                conn.sendall(ANSWER)


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer()
    yield server
    server.listener.close()


def test_each_thread_keeps_its_connection_alive(server: KeepAliveServer) -> None:
    client = TritonClient("127.0.0.1", server.port)
    for _ in range(3):
        assert client.request("GET", "/v2/health/live")[0] == 200
    assert server.accepted == 1


def test_close_all_closes_every_thread_s_connection(server: KeepAliveServer) -> None:
    # GIVEN connections kept alive by three threads (the invoke path's, the supervisor's, ...)
    client = TritonClient("127.0.0.1", server.port)
    threads = [threading.Thread(target=client.request, args=("GET", "/v2/health/live")) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.accepted == 3
    # WHEN the process stopping Triton closes them all
    client.close_all()
    # THEN Triton sees each one closed
    assert all(server.closed.acquire(timeout=5) for _ in range(3))
    # AND a thread whose connection was closed opens a new one
    assert client.request("GET", "/v2/health/live")[0] == 200
    client.close_all()
    assert server.closed.acquire(timeout=5)
    assert client.request("GET", "/v2/health/live")[0] == 200
    assert server.accepted == 5

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from mockserver import MockServer


@pytest.fixture
def start_mock() -> Iterator[Callable[..., MockServer]]:
    """start_mock("--latency-scale", "0.01", ...) -> a running MockServer, stopped after the test."""
    servers: list[MockServer] = []

    def start(*args: str) -> MockServer:
        server = MockServer(*args).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def fast_mock() -> Iterator[MockServer]:
    """One mock per test module with latencies scaled to 1 %, limits on, seed 0."""
    with MockServer("--latency-scale", "0.01", "--seed", "0") as server:
        yield server

"""The real mock server in a subprocess on an ephemeral loopback port, for tests."""

from loadtest.mockproc import MockProcess as MockServer

__all__ = ["MockServer"]

"""Ports for servers a test or benchmark starts: picked where nothing else will take them."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Below the kernel's ephemeral range and above the ports deploy/local/infra uses (9092-9093,
# 19092-19194). A port from bind(("", 0)) comes from the ephemeral range, where any outgoing
# connection (a Kafka or Postgres client of any process) may take it between our closing it and
# the server binding it, or while a killed service is being started again: that was a CI flake.
_LOWEST = 20_000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range, and not
    handed out before by this process (so two servers of one run never get the same one)."""
    highest = max(_ephemeral_start() - 1, _LOWEST + 1_000)
    for _ in range(1_000):
        port = random.randint(_LOWEST, highest)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between {_LOWEST} and {highest}; stop leftover servers")

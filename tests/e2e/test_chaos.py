"""The chaos run, reduced: thousands of events through every service while service processes are
SIGKILLed (and started again) and the Kafka broker restarts; then the ledger finds nothing lost,
nothing applied twice and no WeChat message sent twice (``python -m bench.chaos`` is the full run).

It starts its own platform on its own database: the session's platform must not be killed under
the other e2e tests. The Kafka restart is the shared local broker's (deploy/local/infra), so other
test runs on this machine see it go away for some seconds.
"""

from __future__ import annotations

import sys
import time

import pytest

from bench.chaos import ChaosConfig, report, run
from tests.support.servers import Servers

pytestmark = pytest.mark.e2e


async def test_under_kills_and_a_broker_restart_nothing_is_lost_or_applied_twice(
    servers: Servers,
) -> None:
    started = time.monotonic()
    result = await run(
        ChaosConfig(
            events=5_000,
            kills=4,
            kafka_restarts=1,
            postgres_restarts=0,
            seed=4,
            sender_lease_seconds=20,  # a killed sender's sends are in doubt this long
            settle_timeout=180,
        ),
        servers,
    )
    print(report(result), file=sys.stderr)
    print(f"wall time {time.monotonic() - started:.0f} s", file=sys.stderr)

    violations = result.ledger.violations
    assert sum(result.faults.kills.values()) == 4
    assert result.faults.restarts["kafka"] == 1
    assert sum(result.ledger.events_by_type.values()) >= 5_000
    assert violations["lost"] == 0, report(result)
    assert violations["duplicate"] == 0, report(result)
    assert violations["wechat duplicate"] == 0, report(result)
    assert violations["order"] == 0, report(result)
    assert violations["balance"] == 0, report(result)
    assert violations["seats"] == 0, report(result)
    assert not result.load.errors, result.load.errors
    assert all(r.caught_up_s is not None for r in result.faults.recoveries)

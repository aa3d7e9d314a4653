"""``python -m bench.chaos``: see :mod:`bench.chaos`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bench.chaos import ChaosConfig, report, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events to drive, at least")
    parser.add_argument("--kills", type=int, default=20, help="service processes to SIGKILL")
    parser.add_argument("--seed", type=int, default=12, help="for the kill schedule and choices")
    parser.add_argument("--kafka-restarts", type=int, default=1)
    parser.add_argument("--postgres-restarts", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    result = asyncio.run(
        run(
            ChaosConfig(
                events=args.events,
                kills=args.kills,
                seed=args.seed,
                kafka_restarts=args.kafka_restarts,
                postgres_restarts=args.postgres_restarts,
            )
        )
    )
    print(report(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Kafka clients configured for this project's guarantees, and topic administration.

Every client takes a bootstrap list, ``"host1:port1,host2:port2"`` (the ``kafka_bootstrap``
setting): aiokafka's producer, consumer and admin client all try the hosts in turn until one
answers, then learn the whole cluster from it. :func:`bootstrap_servers` turns the setting into
the list they take, without the empty host a stray comma or space would otherwise add.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotControllerError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    for_code,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# A request may go to a broker the client's metadata still lists but that just died (a killed
# broker stays in the metadata until the controller fences it, seconds later; aiokafka then waits
# out its request timeout): a new admin client, with fresh metadata, asks another broker.
_ANOTHER_BROKER = (
    KafkaConnectionError,
    NodeNotReadyError,
    NotControllerError,
    RequestTimedOutError,
    KafkaTimeoutError,
    TimeoutError,
)
_ATTEMPTS = 3
_RETRY_SECONDS = 0.5
_ADMIN_TIMEOUT_MS = 10_000


def bootstrap_servers(bootstrap: str | Sequence[str]) -> list[str]:
    """``"h1:p1, h2:p2,"`` -> ``["h1:p1", "h2:p2"]``: what every aiokafka client takes as
    ``bootstrap_servers``. Raises ``ValueError`` when no host is named."""
    items = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    hosts = [item.strip() for item in items if item.strip()]
    if not hosts:
        raise ValueError(f"no Kafka host in the bootstrap list {bootstrap!r}")
    return hosts


def idempotent_producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    """acks=all and idempotence: a retried send is neither lost nor written twice, and order
    within a partition holds; linger batches the relay's sends into few requests. With topics
    whose ``min.insync.replicas`` is 2, an acknowledged send is on two brokers at least."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers(bootstrap),
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def _administer(bootstrap: str, work: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
    """Run ``work`` with an admin client, again with a new client if a broker did not answer.

    When no broker of the list answers at all, the error is raised at once: the caller (e.g. a
    service starting while Kafka is down) retries at its own pace."""
    for attempt in range(1, _ATTEMPTS + 1):
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers(bootstrap), request_timeout_ms=_ADMIN_TIMEOUT_MS
        )
        started = False
        try:
            await admin.start()
            started = True
            return await work(admin)
        except _ANOTHER_BROKER:
            if attempt == _ATTEMPTS or not started:  # no broker of the list answered
                raise
            log.info("a Kafka broker did not answer an admin request; retrying", exc_info=True)
        finally:
            await admin.close()
        await asyncio.sleep(_RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")


async def ensure_topics(
    bootstrap: str,
    topics: dict[str, int],
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> None:
    """Create each topic (name -> partition count) unless it exists: never auto-created.

    New topics are replicated on ``replication_factor`` brokers, with the topic config
    ``min.insync.replicas``: a production cluster of 3 brokers takes 3 and 2 (the settings
    ``topic_replication_factor`` and ``topic_min_insync_replicas``), so an event acknowledged
    with acks=all survives the loss of any one broker. An existing topic is left as it is, with
    a warning when it has fewer replicas than asked (changing that is a partition reassignment).

    Raises a ``KafkaError`` when the cluster cannot create a topic: e.g.
    ``InvalidReplicationFactorError`` while fewer brokers than ``replication_factor`` are up,
    ``KafkaConnectionError`` when no broker of the list answers. Callers retry at their pace.
    """
    if min_insync_replicas > replication_factor:
        raise ValueError(
            f"min_insync_replicas {min_insync_replicas} exceeds "
            f"replication_factor {replication_factor}: no write could ever be acknowledged"
        )

    async def work(admin: AIOKafkaAdminClient) -> None:
        # All topics' metadata (what list_topics fetches too): asking for named topics would
        # let a broker with auto.create.topics.enable create them with its defaults.
        described: list[dict[str, Any]] = await admin.describe_topics()
        existing = {t["topic"]: t for t in described}
        for name in topics.keys() & existing.keys():
            replicas = min((len(p["replicas"]) for p in existing[name]["partitions"]), default=0)
            if replicas < replication_factor:
                log.warning(
                    "topic %s has %d replicas, the settings ask for %d: it was created before;"
                    " reassign its partitions (kafka-reassign-partitions) to replicate it",
                    name,
                    replicas,
                    replication_factor,
                )
        configs = {"min.insync.replicas": str(min_insync_replicas)}
        wanted = [
            NewTopic(
                name=name,
                num_partitions=parts,
                replication_factor=replication_factor,
                topic_configs=configs,
            )
            for name, parts in topics.items()
            if name not in existing
        ]
        if not wanted:
            return
        answer = await admin.create_topics(wanted)
        # The answer carries an error code per topic; aiokafka raises none of them itself.
        for topic, code, *message in answer.topic_errors:
            error = for_code(code)
            if code == 0 or error is TopicAlreadyExistsError:
                continue  # created, or another process won the race: the topic is there
            detail = message[0] if message and message[0] else error.description
            raise error(f"creating topic {topic}: {detail}")

    await _administer(bootstrap, work)


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (a test's or benchmark's namespace):
    thousands of leftover partitions would exhaust the broker's file descriptors."""

    async def work(admin: AIOKafkaAdminClient) -> None:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)

    await _administer(bootstrap, work)

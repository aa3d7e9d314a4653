"""Settings every service shares, read from the environment with one prefix per service.

``MembershipSettings()`` reads ``GONGHUI_MEMBERSHIP_DATABASE_URL`` and so on; nothing is read from
anywhere else, so ops can see a service's whole configuration in its environment.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import FEDERATION_ZONE

DEVELOPMENT_PASSWORDS = {"membership", "mutual_aid", "training", "notifications", "union_funds"}
# Fernet key for department credentials' secrets: base64 of b"gonghui-development-key-not-prod".
DEVELOPMENT_CREDENTIALS_KEY = "Z29uZ2h1aS1kZXZlbG9wbWVudC1rZXktbm90LXByb2Q="


class ServiceSettings(BaseSettings):
    """Subclasses set ``service`` and ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(extra="ignore")
    service: ClassVar[str]

    environment: Literal["development", "production"] = "development"
    database_url: str = ""
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Prepended to every topic name: lets tests and staging share one broker without crosstalk.
    topic_namespace: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    telemetry: Literal["off", "console", "otlp"] = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    # Topics this service creates: a production cluster runs 3 brokers with replication factor 3
    # and min.insync.replicas 2, so an acknowledged event survives the loss of any one broker.
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int = Field(default=1, ge=1)
    relay_batch_size: int = 1000
    relay_poll_seconds: float = 1.0
    consumer_batch_size: int = 500
    consumer_max_attempts: int = 3
    # How long the broker may gather events into one fetch (fetch.max.wait.ms, with a high
    # fetch.min.bytes): each hop's delay is at most this, and a steady stream costs a fetch per
    # several events instead of one per event. 0: answer at the first event.
    consumer_gather_ms: int = Field(default=50, ge=0, le=500)
    # How long a failing event of a batch may hold up its partition in retries before the rest
    # of the batch's failures go to the dead-letter topic at their first failure.
    consumer_retry_budget_seconds: float = Field(default=5.0, ge=0)
    # Retention: published outbox rows (a replay source for a lost topic), inbox rows (longer
    # than Kafka keeps events, so no redelivery can outlive its inbox row), the audit trail, and
    # settled webhook deliveries.
    outbox_retention_hours: int = Field(default=168, ge=1)
    inbox_retention_days: int = Field(default=14, ge=1)
    audit_retention_days: int = Field(default=400, ge=1)
    webhook_retention_days: int = Field(default=30, ge=1)
    retention_interval_seconds: float = Field(default=600, gt=0)
    # Supervised background work restarts after a failure with back-off up to this many seconds.
    restart_backoff_max_seconds: float = Field(default=30.0, gt=0)
    run_relay: bool = True
    run_consumers: bool = True
    # What this process runs: "all" (HTTP API, relay, consumers and background workers: the
    # default, and what tests and the demo use), "api" (only the HTTP API, in http_workers
    # processes) or "worker" (only the relay, consumers and background workers; no HTTP). A
    # service runs as one "all" process, or as "api" processes plus one "worker" process.
    role: Literal["all", "api", "worker"] = "all"
    http_workers: int = Field(default=1, ge=1)
    # Encrypts department systems' secrets at rest (shared.auth): a Fernet key, or "new,old"
    # while re-keying (encrypts with the first, decrypts with any).
    credentials_key: str = DEVELOPMENT_CREDENTIALS_KEY
    # The federation's calendar (shared.clock): the day a claim, a completion or a join falls on.
    timezone: str = FEDERATION_ZONE

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> ServiceSettings:
        if not self.database_url:
            role = self.service
            # Loopback needs no TLS; set sslmode in the URL for a database across a network.
            self.database_url = f"postgresql://{role}:{role}@127.0.0.1:5432/gonghui?sslmode=disable"
        if self.environment == "production" and any(
            f":{pw}@" in self.database_url for pw in DEVELOPMENT_PASSWORDS
        ):
            raise ValueError("database_url uses a development password in production")
        keys = [k.strip() for k in self.credentials_key.split(",")]
        if self.environment == "production" and DEVELOPMENT_CREDENTIALS_KEY in keys:
            raise ValueError("credentials_key is the development key in production")
        for key in keys:
            Fernet(key.encode())  # a malformed key fails at start-up, not on a request
        try:  # an unknown zone fails at start-up, not at the first request
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError("topic_min_insync_replicas exceeds topic_replication_factor")
        if self.role == "api":
            self.run_relay = self.run_consumers = False  # the worker process's
        return self

    @property
    def runs_workers(self) -> bool:
        """Whether this process runs the service's background workers (see ``role``)."""
        return self.role != "api"

    @property
    def db_schema(self) -> str:
        return self.service

    def topic(self, name: str) -> str:
        """Full topic name, e.g. ``topic("membership.events")``."""
        return f"{self.topic_namespace}{name}"

    @property
    def events_topic(self) -> str:
        return self.topic(f"{self.service}.events")

    @property
    def dead_letter_topic(self) -> str:
        return self.topic(f"{self.service}.dlq")

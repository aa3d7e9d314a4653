"""Webhook deliveries: signed so the receiver can verify them, allowed URLs, back-off, body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import orjson
import pytest
from cryptography.fernet import Fernet

from shared.auth import signing
from shared.auth.credentials import encrypt
from shared.events.envelope import Envelope
from shared.events.notifications import RecipientUnreachable
from shared.settings import ServiceSettings
from shared.webhooks.fanout import delivery_body
from shared.webhooks.sender import WebhookSender
from shared.webhooks.store import url_problem

KEY = Fernet.generate_key().decode()
SUBSCRIPTION_SECRET = "subscription-secret"


class Settings(ServiceSettings):
    service: ClassVar[str] = "mutual_aid"


def row(url: str, body: bytes = b'{"id": "e1"}') -> dict[str, object]:
    return {
        "id": 7,
        "url": url,
        "body": body,
        "event_id": "e1",
        "event_type": "gonghui.x.y",
        "secret_encrypted": encrypt(KEY, SUBSCRIPTION_SECRET),
    }


def receiver_checks(headers: dict[str, str], path: str, query: bytes, body: bytes) -> str:
    return signing.verify(
        SUBSCRIPTION_SECRET, method="POST", path=path, query=query, body=body, headers=headers
    )


def test_a_delivery_verifies_at_the_receiver_with_its_own_path_and_query() -> None:
    settings = Settings(credentials_key=KEY)
    delivery = row("https://tax.example/hooks/%E5%B7%A5%E4%BC%9A?tenant=7&x=a+b")
    headers = WebhookSender().headers(settings, delivery)  # type: ignore[arg-type]
    # What a framework on the receiving side hands over: decoded path, raw query.
    assert receiver_checks(headers, "/hooks/工会", b"tenant=7&x=a+b", b'{"id": "e1"}') == (
        "mutual_aid"
    )
    assert headers["X-Gonghui-Event-Id"] == "e1"
    assert headers["X-Gonghui-Delivery-Id"] == "7"
    with pytest.raises(signing.SignatureError):
        receiver_checks(headers, "/hooks/工会", b"tenant=7&x=a+b", b'{"id": "e2"}')
    with pytest.raises(signing.SignatureError):
        receiver_checks(headers, "/hooks/other", b"tenant=7&x=a+b", b'{"id": "e1"}')
    with pytest.raises(signing.SignatureError):
        signing.verify(
            "another-subscription-secret",
            method="POST",
            path="/hooks/工会",
            query=b"tenant=7&x=a+b",
            body=b'{"id": "e1"}',
            headers=headers,
        )


def test_each_delivery_attempt_has_a_fresh_nonce() -> None:
    settings = Settings(credentials_key=KEY)
    sender = WebhookSender()
    first = sender.headers(settings, row("https://h/x"))  # type: ignore[arg-type]
    second = sender.headers(settings, row("https://h/x"))  # type: ignore[arg-type]
    assert first[signing.NONCE] != second[signing.NONCE]


@pytest.mark.parametrize(
    ("url", "environment", "allowed"),
    [
        ("https://tax.example/hook", "production", True),
        ("http://tax.example/hook", "production", False),
        ("http://tax.example/hook", "development", False),
        ("http://127.0.0.1:9000/hook", "development", True),
        ("http://localhost:9000/hook", "development", True),
        ("http://127.0.0.1:9000/hook", "production", False),
        ("https://user:pw@tax.example/hook", "production", False),
        ("ftp://tax.example/hook", "development", False),
        ("https:///nohost", "production", False),
    ],
)
def test_only_https_or_local_http_in_development(url: str, environment: str, allowed: bool) -> None:
    assert (url_problem(url, environment) is None) is allowed


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    sender = WebhookSender(backoff_seconds=2, max_backoff_seconds=60)
    for failures, base in ((1, 2), (2, 4), (3, 8), (10, 60), (40, 60)):
        assert base * 0.8 <= sender.backoff(failures) <= base * 1.2


def test_delivery_body_is_a_structured_cloudevent_with_the_data_untouched() -> None:
    event = RecipientUnreachable(
        member_id="m1", openid_masked="o***1", errcode=43004, reason="unsubscribed"
    )
    envelope = Envelope.wrap(event)
    envelope = envelope.model_copy(update={"time": datetime(2026, 1, 1, tzinfo=UTC)})
    body = orjson.loads(delivery_body(envelope))
    assert body["id"] == envelope.id
    assert body["type"] == RecipientUnreachable.type
    assert body["specversion"] == "1.0"
    assert body["time"] == "2026-01-01T00:00:00+00:00"
    assert body["data"] == orjson.loads(envelope.data)

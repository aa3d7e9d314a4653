"""Outbound webhooks: department systems subscribe HTTPS endpoints to a service's events.

How it fits together, all inside the service's own schema:

- :func:`webhooks_router` (scope ``webhooks:manage``): create, list and delete subscriptions, list
  deliveries, replay one. A subscription's signing secret is shown once, at creation.
- :func:`webhook_fanout_handlers`: event handlers the service adds to its consumer for its *own*
  events topic. Each event inserts one ``webhook_deliveries`` row per matching subscription inside
  the consumer's transaction, so the inbox makes the fan-out happen exactly once per event.
- :data:`webhook_sender` (a runtime worker): delivers due rows, signed like department requests
  (see :mod:`shared.auth.signing`), retried with exponential back-off, every attempt recorded.
  Each subscription has at most one delivery in flight and its own back-off, so a slow or failing
  endpoint never holds up the others. Delivery is at least once: receivers dedupe on
  ``X-Gonghui-Event-Id``.

Wiring in a service's ``main.py``::

    runtime = ServiceRuntime(
        settings,
        follows={"mutual_aid.events": webhook_fanout_handlers(OFFERED)},
        workers={"webhooks": webhook_sender},
    )
    app.include_router(webhooks_router(OFFERED))
"""

from shared.webhooks.api import webhooks_router
from shared.webhooks.fanout import webhook_fanout_handlers
from shared.webhooks.sender import WebhookSender, make_webhook_sender, webhook_sender

__all__ = [
    "WebhookSender",
    "make_webhook_sender",
    "webhook_fanout_handlers",
    "webhook_sender",
    "webhooks_router",
]

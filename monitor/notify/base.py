"""The Notifier interface: deliver one alert to one destination, or say why not."""

from __future__ import annotations

from abc import ABC, abstractmethod

from monitor.models import Alert, Delivery


class Notifier(ABC):
    """A destination for alerts (Slack, console, ...). Synchronous: the outbox calls
    ``send`` from a worker thread, so a slow destination never blocks polling.

    Retries are not the notifier's job: it makes one attempt and reports the outcome.
    The outbox (``monitor.notify.outbox``) owns backoff, Retry-After and dead-lettering.
    """

    name: str

    @abstractmethod
    def send(self, alert: Alert) -> Delivery:
        """Deliver ``alert`` once.

        Raises:
            NotifyError: ``retryable`` says whether to try again; ``retry_after`` carries
                the destination's requested wait; ``ambiguous`` marks a send whose outcome
                is unknown (the message may have been posted).
        """

    def reconcile(self, alert: Alert) -> Delivery | None:
        """After an ambiguous attempt: return the Delivery if ``alert`` is already posted.

        The default cannot tell, so returns None (the outbox then re-sends, accepting at
        most one duplicate, which it counts).
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections. Called once at shutdown."""

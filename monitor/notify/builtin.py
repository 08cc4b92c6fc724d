"""The notifier types monitor ships: ``console`` and ``slack`` (registered by name in
:mod:`monitor.notify.registry`). Each is a plugin class: its own options model and a
``from_options`` that builds the notifier. Slack's SDK is imported only when a Slack
notifier is built, so reading config.yaml stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr

from monitor.config import Duration, NotifierConfig, url_problem
from monitor.notify.base import Notifier
from monitor.notify.console import ConsoleNotifier

if TYPE_CHECKING:
    from monitor.config import Loc


class ConsoleOptions(NotifierConfig):
    """No options: it prints to the daemon's stdout."""

    def delivers(self) -> str | None:
        return "prints alerts to stdout"


class Console:
    Options = ConsoleOptions

    @classmethod
    def from_options(cls, options: ConsoleOptions) -> ConsoleNotifier:
        return ConsoleNotifier(name=options.name)


class SlackOptions(NotifierConfig):
    """The Web API (``token`` + ``channel``: metadata, reconciliation, threads) is the
    primary path; an incoming ``webhook_url`` the quick start. With both empty the
    notifier is off (the default config runs without credentials)."""

    token: SecretStr | None = Field(default=None, examples=["${SLACK_BOT_TOKEN}"])
    webhook_url: SecretStr | None = Field(default=None, examples=["${SLACK_WEBHOOK_URL}"])
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    timeout: Duration = 10.0
    rate_per_second: float = Field(default=1.0, gt=0)
    burst: int = Field(default=3, ge=1)

    def delivers(self) -> str | None:
        if self.secret("token"):
            return f"Web API, channel {self.channel}"
        if self.secret("webhook_url"):
            return "incoming webhook"
        return None

    def problems(self) -> list[tuple[Loc, str]]:
        out: list[tuple[Loc, str]] = []
        if self.secret("token") and not self.channel:
            out.append(((), "a Slack token needs a 'channel'"))
        if self.secret("token") and url_problem(self.api_url):
            out.append((("api_url",), f"must be the Slack API's http(s) URL: it "
                        f"{url_problem(self.api_url)} (got {self.api_url!r})"))
        hook = self.secret("webhook_url")
        if hook and url_problem(hook):
            out.append((("webhook_url",), f"not a usable webhook URL: it {url_problem(hook)} "
                        "(the value is secret and not shown)"))
        return out

    def pacing(self) -> tuple[float, int] | None:
        """Slack allows about one message a second per channel, with short bursts."""
        return self.rate_per_second, self.burst


class Slack:
    Options = SlackOptions

    @classmethod
    def from_options(cls, options: SlackOptions) -> Notifier:
        """The Web API when a token is set, else the incoming webhook."""
        from monitor.notify.slack import SlackWebApiNotifier, SlackWebhookNotifier

        if options.secret("token"):
            return SlackWebApiNotifier(name=options.name, token=options.secret("token"),
                                       channel=options.channel or "", api_url=options.api_url,
                                       timeout=options.timeout)
        return SlackWebhookNotifier(name=options.name, webhook_url=options.secret("webhook_url"),
                                    timeout=options.timeout)

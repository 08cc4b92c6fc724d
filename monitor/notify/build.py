"""Which notifiers will run, and why the others will not: one judgement for ``check``,
``run``, health and the outbox's skipped deliveries.

A Slack notifier whose secrets are empty is switched off (so the default config runs on
a machine without credentials), but it is never forgotten: the reason names the
environment variables the operator has to set, ``check`` prints it, and every alert that
would have gone there is stored as a ``skipped`` delivery with that reason, which
``monitor alerts retry --notifier NAME`` sends once the notifier is on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.config import Config, NotifierConfig
from monitor.notify.base import Notifier
from monitor.notify.console import ConsoleNotifier

log = logging.getLogger("monitor")


@dataclass(frozen=True)
class NotifierPlan:
    """``on``: the notifier will deliver; ``why``: how (when on) or what is missing.
    ``known`` is False when this process cannot tell because the variables are not set
    here at all (a shell without the daemon's secrets, see ``load_config``)."""

    name: str
    type: str
    on: bool
    why: str
    known: bool = True

    @property
    def skip_reason(self) -> str:
        return f"notifier off: {self.why}"

    def __str__(self) -> str:
        state = "ON" if self.on else ("OFF" if self.known else "UNKNOWN")
        return f"{self.name}: {state} ({self.why})"


def _empty_secret_reason(config: Config, index: int) -> str:
    names = [*config.empty_vars("notifiers", index, "token"),
             *config.empty_vars("notifiers", index, "webhook_url")]
    names = list(dict.fromkeys(names))
    if names:
        verb = "is" if len(names) == 1 else "are"
        return f"{' and '.join(names)} {verb} empty"
    return "no token or webhook_url is set"


def plan_notifiers(config: Config) -> list[NotifierPlan]:
    plans = []
    for i, n in enumerate(config.notifiers):
        if n.type == "console":
            plans.append(NotifierPlan(n.name, n.type, True, "prints alerts to stdout"))
        elif n.secret("token"):
            plans.append(NotifierPlan(n.name, n.type, True, f"Web API, channel {n.channel}"))
        elif n.secret("webhook_url"):
            plans.append(NotifierPlan(n.name, n.type, True, "incoming webhook"))
        else:
            unset = [*config.unset_vars("notifiers", i, "token"),
                     *config.unset_vars("notifiers", i, "webhook_url")]
            if unset:
                plans.append(NotifierPlan(n.name, n.type, False, f"{' and '.join(unset)} not "
                                          "set in this environment; the daemon's may be",
                                          known=False))
            else:
                plans.append(NotifierPlan(n.name, n.type, False, _empty_secret_reason(config, i)))
    return plans


def _make(n: NotifierConfig) -> Notifier:
    from monitor.notify.slack import SlackWebApiNotifier, SlackWebhookNotifier

    if n.type == "console":
        return ConsoleNotifier(name=n.name)
    if n.secret("token"):
        return SlackWebApiNotifier(name=n.name, token=n.secret("token"), channel=n.channel or "",
                                   api_url=n.api_url, timeout=n.timeout)
    return SlackWebhookNotifier(name=n.name, webhook_url=n.secret("webhook_url"),
                                timeout=n.timeout)


def build_notifiers(config: Config) -> tuple[dict[str, Notifier], list[NotifierPlan]]:
    """The notifiers that are on, by name, and the plan for all of them. Logs one warning
    per notifier that is off, naming what to set."""
    plans = plan_notifiers(config)
    by_name = {n.name: n for n in config.notifiers}
    notifiers: dict[str, Notifier] = {}
    for plan in plans:
        if plan.on:
            notifiers[plan.name] = _make(by_name[plan.name])
        else:
            log.warning("notifier_off name=%s reason=%r: alerts for it are kept as skipped; "
                        "set the variable, restart, then `monitor alerts retry --notifier %s`",
                        plan.name, plan.why, plan.name)
    return notifiers, plans

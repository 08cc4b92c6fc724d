"""Which notifiers will run, and why the others will not: one judgement for ``check``,
``run``, health and the outbox's skipped deliveries.

A notifier whose secrets are all empty (Slack's token and webhook URL) is switched off
(so the default config runs on a machine without credentials), but it is never
forgotten: the reason names the environment variables the operator has to set, ``check``
prints it, and every alert that would have gone there is stored as a ``skipped`` delivery
with that reason, which ``monitor alerts retry --notifier NAME`` sends once the notifier
is on. Notifiers are built by their type's plugin (``monitor.notify.registry``); nothing
here names a type.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.config import Config, NotifierConfig
from monitor.notify.base import Notifier
from monitor.notify.registry import NOTIFIERS

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


def _empty_secret_reason(config: Config, index: int, secrets: list[str]) -> str:
    names = [var for key in secrets for var in config.empty_vars("notifiers", index, key)]
    names = list(dict.fromkeys(names))
    if names:
        verb = "is" if len(names) == 1 else "are"
        return f"{' and '.join(names)} {verb} empty"
    return f"no {' or '.join(secrets)} is set"


def plan_notifiers(config: Config) -> list[NotifierPlan]:
    """ON with how it delivers, or OFF (UNKNOWN) naming the secrets' variables: each
    notifier's options say which (``NotifierConfig.delivers`` and its ``SecretStr``
    fields), so a new notifier type needs nothing here."""
    plans = []
    for i, n in enumerate(config.notifiers):
        how = n.delivers()
        if how is not None:
            plans.append(NotifierPlan(n.name, n.type, True, how))
            continue
        secrets = n.secret_fields()
        unset = [var for key in secrets for var in config.unset_vars("notifiers", i, key)]
        if unset:
            plans.append(NotifierPlan(n.name, n.type, False, f"{' and '.join(unset)} not "
                                      "set in this environment; the daemon's may be",
                                      known=False))
        else:
            plans.append(NotifierPlan(n.name, n.type, False,
                                      _empty_secret_reason(config, i, secrets)))
    return plans


def make_notifier(n: NotifierConfig) -> Notifier:
    """The notifier of ``n``'s type, built by its registered plugin.

    Raises:
        UnknownType: no notifier type ``n.type`` (a config error naming the known ones).
    """
    return NOTIFIERS.get(n.type).from_options(n)


def build_notifiers(config: Config) -> tuple[dict[str, Notifier], list[NotifierPlan]]:
    """The notifiers that are on, by name, and the plan for all of them. Logs one warning
    per notifier that is off, naming what to set."""
    plans = plan_notifiers(config)
    by_name = {n.name: n for n in config.notifiers}
    notifiers: dict[str, Notifier] = {}
    for plan in plans:
        if plan.on:
            notifiers[plan.name] = make_notifier(by_name[plan.name])
        else:
            log.warning("notifier_off name=%s reason=%r: alerts for it are kept as skipped; "
                        "set the variable, restart, then `monitor alerts retry --notifier %s`",
                        plan.name, plan.why, plan.name)
    return notifiers, plans

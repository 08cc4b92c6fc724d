"""Notifier types by name: ``type: slack`` in config.yaml -> the plugin that builds it.

A new notifier type is one module with a plugin class and one line in ``BUILTIN`` below
(or an entry point in the ``monitor.notifiers`` group of another package)::

    class Teams(Notifier):
        class Options(NotifierConfig):   # name comes from NotifierConfig
            webhook_url: SecretStr | None = None
        @classmethod
        def from_options(cls, options: Options) -> Teams: ...
        def send(self, alert: Alert) -> Delivery: ...

``Options`` is validated from the entry's keys (``monitor check`` reports a bad one at its
``file:line:col``). Its ``SecretStr`` fields are the notifier's secrets: when all of them
come out empty the notifier is off, with the reason (``monitor.notify.build``); its
``delivers()``, ``problems()`` and ``pacing()`` (see ``NotifierConfig``) refine that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from monitor.registry import Registry

if TYPE_CHECKING:
    from monitor.config import NotifierConfig
    from monitor.notify.base import Notifier

GROUP = "monitor.notifiers"
BUILTIN = {
    "console": "monitor.notify.builtin:Console",
    "slack": "monitor.notify.builtin:Slack",
}


class NotifierPlugin(Protocol):
    """A notifier type: its options model and how to build the notifier from them."""

    Options: type[NotifierConfig]

    def from_options(self, options: Any, /) -> Notifier: ...


NOTIFIERS: Registry[NotifierPlugin] = Registry(
    "notifier", GROUP, "monitor.config:NotifierConfig", BUILTIN)

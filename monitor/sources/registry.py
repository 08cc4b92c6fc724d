"""Source types by name: ``type: rss`` in config.yaml -> the plugin that builds the source.

A new source type is one module with a plugin class and one line in ``BUILTIN`` below (or
an entry point in the ``monitor.sources`` group of another package)::

    class Mastodon:                      # or the Source subclass itself
        class Options(SourceConfig):     # name, url, interval, ... come from SourceConfig
            tag: str
        @classmethod
        def from_options(cls, options: Options, context: SourceContext) -> Source: ...

``Options`` is validated from the entry's keys (``monitor check`` reports a bad one at its
``file:line:col``); ``from_options`` gets it and the daemon's shared fetch machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from monitor.registry import Registry

if TYPE_CHECKING:
    from monitor.config import SourceConfig
    from monitor.sources.base import Source
    from monitor.sources.fetch import Fetcher, FetchLimits
    from monitor.sources.parsing import ParseLimits

GROUP = "monitor.sources"
BUILTIN = {
    "rss": "monitor.sources.builtin:Rss",
    "json": "monitor.sources.builtin:JsonApi",
    "gdelt": "monitor.sources.builtin:Gdelt",
}


@dataclass(frozen=True)
class SourceContext:
    """What the daemon shares with every source: one HTTP client (connection reuse, the
    address policy) and the limits from config.yaml's ``fetch:`` section."""

    fetcher: Fetcher
    limits: FetchLimits
    parse_limits: ParseLimits | None = None


class SourcePlugin(Protocol):
    """A source type: its options model and how to build the source from them."""

    Options: type[SourceConfig]

    def from_options(self, options: Any, context: SourceContext, /) -> Source: ...


# An entry with no ``type`` is an RSS/Atom/JSON Feed source, as it always was.
SOURCES: Registry[SourcePlugin] = Registry(
    "source", GROUP, "monitor.config:SourceConfig", BUILTIN, default="rss")

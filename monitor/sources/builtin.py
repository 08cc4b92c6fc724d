"""The source types monitor ships: ``rss``, ``json`` and ``gdelt`` (registered by name in
:mod:`monitor.sources.registry`). Each is a plugin class: its own options model and a
``from_options`` that builds the source, so the app never switches on ``type``.

The sources themselves (feedparser, the HTTP client, the parser pool) are imported when
one is built: ``monitor check`` reads these options without paying for the daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from pydantic import model_validator

from monitor.config import SourceConfig
from monitor.sources.registry import SourceContext

if TYPE_CHECKING:
    from monitor.sources.jsonapi import JsonApiSource
    from monitor.sources.rss import RssSource


class RssOptions(SourceConfig):
    """RSS 0.9x/2.0, Atom, RDF and JSON Feed: the common options are all it needs."""


class Rss:
    Options = RssOptions

    @classmethod
    def from_options(cls, options: RssOptions, context: SourceContext) -> RssSource:
        from monitor.sources.rss import RssSource

        return RssSource(options.name, options.url, context.fetcher, limits=context.limits,
                         max_items=options.max_items, title=options.title or "",
                         parse_limits=context.parse_limits)


class JsonApiOptions(SourceConfig):
    """A JSON API mapped to items by JMESPath: ``items`` finds the list, ``fields`` maps
    Item fields to expressions on each element. Compiled here, so a bad expression is a
    config problem (``monitor check``), not a source that fails to start."""

    items: str | None = None
    fields: dict[str, str] | None = None

    @model_validator(mode="after")
    def _mapping(self) -> Self:
        if not self.items or not self.fields:
            raise ValueError("a json source needs 'items' (JMESPath to the list) and 'fields'")
        _compile(self.items, self.fields)
        return self


class JsonApi:
    Options = JsonApiOptions

    @classmethod
    def from_options(cls, options: JsonApiOptions, context: SourceContext) -> JsonApiSource:
        return _json_source(options, context, options.items or "", options.fields or {})


class GdeltOptions(SourceConfig):
    """GDELT's DOC 2.0 API (``mode=artlist&format=json``): ``items``/``fields`` are preset
    (``GDELT_ITEMS``/``GDELT_FIELDS``) and may be overridden."""

    items: str | None = None
    fields: dict[str, str] | None = None

    @model_validator(mode="after")
    def _mapping(self) -> Self:
        if self.items or self.fields:  # the presets are known to compile
            from monitor.sources.jsonapi import GDELT_FIELDS, GDELT_ITEMS

            _compile(self.items or GDELT_ITEMS, self.fields or GDELT_FIELDS)
        return self


class Gdelt:
    Options = GdeltOptions

    @classmethod
    def from_options(cls, options: GdeltOptions, context: SourceContext) -> JsonApiSource:
        from monitor.sources.jsonapi import GDELT_FIELDS, GDELT_ITEMS

        return _json_source(options, context, options.items or GDELT_ITEMS,
                            options.fields or GDELT_FIELDS)


def _json_source(options: SourceConfig, context: SourceContext, items: str,
                 fields: dict[str, str]) -> JsonApiSource:
    """A JSON API source (json and gdelt differ only in their default field map); imported
    here, not at module level, so reading a config does not import aiohttp."""
    from monitor.sources.jsonapi import JsonApiSource

    return JsonApiSource(options.name, options.url, context.fetcher, items=items,
                         fields=fields, limits=context.limits, max_items=options.max_items,
                         title=options.title or "", parse_limits=context.parse_limits)


def _compile(items: str, fields: dict[str, str]) -> None:
    """Compile the mapping as the source will; a JMESPath error's caret drawing is cut
    (a config problem is one line)."""
    from monitor.sources.jsonapi import FieldMap

    try:
        FieldMap.compile(items, fields)
    except ValueError as exc:
        raise ValueError(str(exc).splitlines()[0].rstrip(": ")) from None

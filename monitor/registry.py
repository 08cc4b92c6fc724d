"""Registries: a backend (a source, a notifier; later a queue or a store) is found by its
``type`` name, so that adding one is one new module and one registry line (or an entry
point in another package), never an edit of the config models, the app or the CLI.

A *plugin* is a class with

- ``Options``: a pydantic model, a subclass of the registry's base options model (e.g.
  ``SourceConfig``), for its keys in config.yaml. It does not declare ``type``: the
  registry adds ``type: Literal[name]``, so one class can be registered under two names
  and the name lives in one place;
- ``from_options(options, ...)``: builds the backend; the arguments are the kind's
  (:mod:`monitor.sources.registry`, :mod:`monitor.notify.registry`).

Plugins come from three places: built-ins, given as ``"module:attr"`` and imported on
first use (validating config.yaml must not import Slack's SDK just to read a console
notifier's options); entry points in the registry's group (``monitor.sources``,
``monitor.notifiers``), read once on first use; and :meth:`Registry.register` (tests,
embedding). An entry point cannot shadow a built-in.

The registry is also the validator of its config field::

    sources: list[Annotated[SourceConfig, SOURCES]]

Each entry is validated through ``Annotated[Union[<each Options>], Field(discriminator=
"type")]``, built from the plugins registered *at validation time* (a plugin registered
after this module was imported is seen), after a check of ``type`` itself so that a
missing or unknown type reads ``unknown source type 'rsss'; did you mean 'rss'?`` at the
``type`` key instead of pydantic's union wording. pydantic puts the union's tag in an
error's location (``sources.0.rss.interval``); :meth:`Registry.variant` and
:meth:`Registry.tag_of` let :mod:`monitor.yamlfile` drop it and suggest the right
member's fields.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
from collections.abc import Mapping
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, cast

from pydantic import (
    BaseModel,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from monitor.errors import ConfigError, Problem

log = logging.getLogger("monitor")

P = TypeVar("P")


class UnknownType(ConfigError):
    """A ``type`` no plugin is registered under; the message names the known ones.

    Validation reports an unknown type in config.yaml at its ``file:line:col``; this is
    raised when options built in code reach ``make_source``/``build_notifiers`` (or a
    plugin was unregistered since), where no position is known."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem("config.yaml", 1, 1, message)])
        self.message = message
        self.args = (message,)


def load_ref(ref: str) -> Any:
    """``"package.module:attr"`` -> the object (the form of entry points and built-ins)."""
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[P]):
    """``type`` name -> plugin class, for one kind of backend (see the module docstring).

    ``kind`` names the backend in messages ("source"); ``group`` is the entry-point group;
    ``base`` the options model every plugin's ``Options`` must extend (a class, or a
    ``"module:attr"`` reference when importing it here would be circular); ``default`` the
    type of an entry that names none (sources: ``rss``), or None when ``type`` is required.
    """

    def __init__(self, kind: str, group: str, base: type[BaseModel] | str,
                 builtins: Mapping[str, str], *, default: str | None = None,
                 key: str = "type") -> None:
        self.kind, self.group, self.key, self.default = kind, group, key, default
        self._base_ref = base
        self._builtins = dict(builtins)
        self._refs: dict[str, Any] = dict(builtins)  # name -> "module:attr", EntryPoint, plugin
        self._from_entry_points: set[str] = set()
        self._options: dict[str, type[BaseModel]] = {}  # loaded plugins' typed options
        self._broken: dict[str, str] = {}  # name -> why its plugin could not be loaded
        self._scanned = False
        self._adapter: tuple[tuple[type[BaseModel], ...], TypeAdapter[Any]] | None = None

    # --- plugins --------------------------------------------------------------------------
    def register(self, name: str, plugin: P, *, replace: bool = False) -> P:
        """Make ``plugin`` the ``type: name``. Checked now: a bad plugin fails where it is
        registered, not in the middle of validating someone's config."""
        self._scan()
        if name in self._refs and not replace:
            raise ValueError(f"{self.kind} type {name!r} is already registered")
        self._options[name] = self._typed_options(name, plugin)
        self._refs[name] = plugin
        self._from_entry_points.discard(name)
        self._broken.pop(name, None)
        return plugin

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests); a built-in of that name is back on the next look-up."""
        self._refs.pop(name, None)
        self._options.pop(name, None)
        self._broken.pop(name, None)
        self._from_entry_points.discard(name)
        if name in self._builtins:
            self._refs[name] = self._builtins[name]

    def scan_entry_points(self) -> None:
        """Read the entry-point group again: what the last scan found is replaced (tests
        call this after faking ``importlib.metadata.entry_points``)."""
        for name in list(self._from_entry_points):
            self.unregister(name)
        self._scanned = False
        self._scan()

    def names(self) -> list[str]:
        """Every registered type, loadable or not, sorted."""
        self._scan()
        return sorted(self._refs)

    def get(self, name: str) -> P:
        """The plugin for ``type: name``.

        Raises:
            UnknownType: nothing is registered under ``name``, or its plugin failed to load.
        """
        self._load(name)
        if name not in self._options:
            raise UnknownType(self.unknown(name))
        return cast(P, self._refs[name])

    def options(self, name: str) -> type[BaseModel]:
        """The plugin's ``Options`` with ``type: Literal[name]`` added (what config holds)."""
        self.get(name)
        return self._options[name]

    def unknown(self, name: object) -> str:
        """Why ``name`` is not a usable type, in words for config.yaml's author."""
        if isinstance(name, str) and name in self._broken:
            return f"the {self.kind} type {name!r} could not be loaded: {self._broken[name]}"
        usable = self._usable()
        close = difflib.get_close_matches(name, usable, n=1, cutoff=0.6) \
            if isinstance(name, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} type {name!r}{hint} (known: {', '.join(usable)})"

    def _usable(self) -> list[str]:
        for name in self.names():
            self._load(name)
        return sorted(self._options)

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        try:
            found = importlib.metadata.entry_points(group=self.group)
        except Exception as exc:  # a broken installation must not stop the daemon
            log.warning("plugins_unreadable group=%s error=%r", self.group, str(exc))
            return
        for ep in found:
            if ep.name in self._builtins:
                log.warning("plugin_ignored group=%s name=%s value=%s: a built-in %s type has "
                            "that name", self.group, ep.name, ep.value, self.kind)
            elif ep.name not in self._refs:
                self._refs[ep.name] = ep
                self._from_entry_points.add(ep.name)

    def _load(self, name: str) -> None:
        self._scan()
        if name in self._options or name in self._broken or name not in self._refs:
            return
        ref = self._refs[name]
        try:
            if isinstance(ref, importlib.metadata.EntryPoint):
                plugin = ref.load()
            else:
                plugin = load_ref(ref) if isinstance(ref, str) else ref
            self._options[name] = self._typed_options(name, plugin)
        except Exception as exc:  # a broken plugin is reported where its type is used
            self._broken[name] = f"{type(exc).__name__}: {exc}"
            log.error("plugin_failed kind=%s type=%s error=%r", self.kind, name,
                      self._broken[name])
            return
        self._refs[name] = plugin

    def _base(self) -> type[BaseModel]:
        if isinstance(self._base_ref, str):
            self._base_ref = cast(type[BaseModel], load_ref(self._base_ref))
        return self._base_ref

    def _typed_options(self, name: str, plugin: Any) -> type[BaseModel]:
        options = getattr(plugin, "Options", None)
        base = self._base()
        if not (isinstance(options, type) and issubclass(options, base)):
            raise TypeError(f"{plugin!r} needs an 'Options' class extending {base.__name__}")
        if not callable(getattr(plugin, "from_options", None)):
            raise TypeError(f"{plugin!r} needs a 'from_options' class method")
        fields: dict[str, Any] = {self.key: (Literal[name], name)}
        return cast(type[BaseModel], create_model(options.__name__, __base__=options,
                                                   __module__=options.__module__, **fields))

    # --- validation -------------------------------------------------------------------------
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        """As ``Annotated`` metadata: validate the field's value through :meth:`validate`."""
        return core_schema.no_info_plain_validator_function(self.validate)

    def validate(self, value: Any) -> BaseModel:
        """One config entry -> the options instance of its ``type``'s plugin.

        Raises:
            ValidationError: located within the entry, the union's tag included.
        """
        if isinstance(value, BaseModel):  # built in code (a default, a test)
            if type(value) is self._options.get(str(getattr(value, self.key, ""))):
                return value
            value = dict(value)
        if isinstance(value, Mapping):
            value = dict(value)
            if self.key not in value and self.default is not None:
                value[self.key] = self.default
            tag = value.get(self.key)
            if isinstance(tag, str):
                self._load(tag)
            if not isinstance(tag, str) or tag not in self._options:
                raise self._tag_error(tag, value)
        return cast(BaseModel, self._union().validate_python(value))

    def _tag_error(self, tag: object, value: Any) -> ValidationError:
        if tag is None:
            kind, message = "type_missing", (f"required field is missing: the {self.kind} "
                                             f"type, one of {', '.join(self._usable())}")
        else:
            kind, message = "type_unknown", self.unknown(tag)
        return ValidationError.from_exception_data(self.kind, [InitErrorDetails(
            type=PydanticCustomError(kind, message), loc=(self.key,), input=value)])

    def _union(self) -> TypeAdapter[Any]:
        """``Annotated[Union[<every Options>], Field(discriminator="type")]``, rebuilt when
        the set of plugins changed since the last validation."""
        self._usable()
        members = tuple(self._options[n] for n in sorted(self._options))
        if self._adapter is None or self._adapter[0] != members:
            union: Any = Annotated[Union[members], Field(discriminator=self.key)]  # noqa: UP007
            self._adapter = (members, TypeAdapter(union))
        return self._adapter[1]

    # --- for the error mapper (monitor.yamlfile) ------------------------------------------
    def tag_of(self, data: Any) -> str | None:
        """The tag pydantic puts in the location of an error inside ``data`` (an entry)."""
        if not isinstance(data, Mapping):
            return None
        tag = data.get(self.key, self.default)
        return tag if isinstance(tag, str) else None

    def variant(self, tag: str) -> type[BaseModel] | None:
        """The options model behind ``tag``, for "did you mean" among its own fields."""
        self._load(tag)
        return self._options.get(tag)

    def elsewhere(self, tag: str, key: str) -> str | None:
        """``key`` is not an option of ``tag`` but of other types: say which (a source
        with ``items:`` that forgot ``type: json``)."""
        owners = [n for n in self._usable() if n != tag and key in self._options[n].model_fields]
        if not owners:
            return None
        return f"for type {tag!r} (it is an option of type {' or '.join(owners)})"


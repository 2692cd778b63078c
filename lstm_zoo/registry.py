"""Names -> model builders and recipes, with metadata, plus entry-point plugin discovery.

A model is registered with :func:`register_model`, a decorator over a builder
``fn(**hparams) -> keras.Model``.  The metadata (task, description, default hyperparameters,
inputs/outputs, recipe, pretrained versions) travels with the entry, as in timm's registry.

Third-party packages (and lstm_zoo's own recipes) add models and recipes through the
entry-point group ``lstm_zoo.plugins``.  Each entry point names a module (importing it
registers) or a callable (calling it registers).  Discovery is lazy: it happens on the first
lookup, and a plugin that fails is reported with a warning naming it while the rest of the
registry keeps working.  lstm_zoo's own entry points (those of the ``lstm-zoo`` distribution)
load before any third-party one, so a plugin can never take over a built-in name: its clashing
registration is refused (a warning naming both origins) whatever its entry point is called.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib.metadata
import inspect
import re
import threading
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lstm_zoo.errors import DuplicateNameError, UnknownNameError

PLUGIN_GROUP = "lstm_zoo.plugins"
BUILTIN_DISTRIBUTION = "lstm-zoo"  # whose entry points are the built-in plugins


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and the metadata that travels with it."""

    name: str
    builder: Callable[..., Any]
    task: str
    description: str
    default_hparams: Mapping[str, Any]
    inputs: str
    outputs: str
    recipe: str | None
    pretrained: tuple[str, ...]
    origin: str

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description of the entry (what ``lstm-zoo info`` prints)."""
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "default_hparams": dict(self.default_hparams),
            "inputs": self.inputs,
            "outputs": self.outputs,
            "recipe": self.recipe,
            "pretrained": list(self.pretrained),
            "origin": self.origin,
        }


@dataclasses.dataclass(frozen=True)
class RecipeEntry:
    """A registered recipe: a factory returning the recipe object, and where it came from."""

    name: str
    factory: Callable[[], Any]
    task: str
    description: str
    origin: str


_models: dict[str, ModelEntry] = {}
_recipes: dict[str, RecipeEntry] = {}
_lock = threading.RLock()
_plugins_loaded = False
_loading_plugin: str | None = None  # "plugin 'NAME' of DIST" being loaded, for error messages
_attempted_plugins: set[tuple[str, str]] = set()
_pretrained_providers: list[Callable[[str], Iterable[str]]] = []


def register_pretrained_provider(provider: Callable[[str], Iterable[str]]) -> None:
    """Add ``provider(model_name) -> published tags`` (e.g. ``["weather:1"]``).

    :mod:`lstm_zoo.hub.pretrained` installs one (through the plugin entry point) that reads the published
    index, so the registry learns of published versions without importing the hub.
    """
    with _lock:
        if provider not in _pretrained_providers:
            _pretrained_providers.append(provider)


def _pretrained_of(entry: ModelEntry) -> tuple[str, ...]:
    """Pretrained tags declared at registration plus those the providers report."""
    tags = list(entry.pretrained)
    for provider in list(_pretrained_providers):
        try:
            tags += [t for t in provider(entry.name) if t not in tags]
        except Exception as exc:  # a broken index must not break listing
            warnings.warn(f"pretrained provider {provider!r} failed: {exc}", RuntimeWarning,
                          stacklevel=3)
    return tuple(tags)


def _origin_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    where = f"{module}:{qualname}"
    return f"{where} ({_loading_plugin})" if _loading_plugin else where


def _default_hparams(builder: Callable[..., Any]) -> dict[str, Any]:
    """Keyword defaults of a builder's signature: its default hyperparameters."""
    params = inspect.signature(builder).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.default is not inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def register_model(
    name: str,
    *,
    task: str,
    description: str,
    hparams: Mapping[str, Any] | None = None,
    inputs: str = "",
    outputs: str = "",
    recipe: str | None = None,
    pretrained: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model builder ``fn(**hparams) -> keras.Model`` under ``name``.

    ``hparams`` defaults to the keyword defaults of the builder's signature.  Registering a
    name twice raises :class:`DuplicateNameError` naming both origins, so two plugins can never
    silently shadow each other.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"model name must be a non-empty string without spaces, got {name!r}")

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        entry = ModelEntry(
            name=name,
            builder=builder,
            task=task,
            description=description,
            default_hparams=types.MappingProxyType(
                dict(hparams) if hparams is not None else _default_hparams(builder)
            ),
            inputs=inputs,
            outputs=outputs,
            recipe=recipe,
            pretrained=tuple(pretrained),
            origin=_origin_of(builder),
        )
        with _lock:
            if name in _models:
                raise DuplicateNameError(
                    f"model {name!r} is already registered by {_models[name].origin}; "
                    f"cannot register it again from {entry.origin}"
                )
            _models[name] = entry
        return builder

    return decorator


def register_recipe(recipe_class: type, /, *, factory: Callable[[], Any] | None = None) -> type:
    """Register a recipe class (use as a bare decorator: ``@register_recipe``).

    The recipe's ``name``, ``task`` and ``description`` are read from the class, where they are
    declared once.  ``factory`` (default: the class itself) is what :func:`get_recipe` calls for
    a fresh recipe object, e.g. one configured beforehand.  Registering a name twice raises
    :class:`DuplicateNameError` naming both origins.
    """
    if not isinstance(recipe_class, type):
        raise TypeError(
            f"register_recipe takes a recipe class (use it as @register_recipe on the class), "
            f"got {recipe_class!r}"
        )
    missing = [a for a in ("name", "task", "description")
               if not isinstance(getattr(recipe_class, a, None), str) or not getattr(recipe_class, a)]
    if missing:
        raise TypeError(
            f"recipe class {recipe_class.__qualname__} must set the class attribute(s) "
            f"{', '.join(missing)} to non-empty strings"
        )
    name = recipe_class.name
    if any(c.isspace() for c in name):
        raise ValueError(f"recipe name must not contain spaces, got {name!r}")
    entry = RecipeEntry(name, factory or recipe_class, recipe_class.task,
                        recipe_class.description, _origin_of(recipe_class))
    with _lock:
        if name in _recipes:
            raise DuplicateNameError(
                f"recipe {name!r} is already registered by {_recipes[name].origin}; "
                f"cannot register it again from {entry.origin}"
            )
        _recipes[name] = entry
    return recipe_class


def _distribution_of(ep: importlib.metadata.EntryPoint) -> str | None:
    """The normalised name of the distribution declaring ``ep`` (None when unknown)."""
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return re.sub(r"[-_.]+", "-", name).lower() if name else None


def _plugin_label(ep: importlib.metadata.EntryPoint) -> str:
    """``plugin 'weather' of lstm-zoo``: the entry point and its distribution, for messages."""
    dist = _distribution_of(ep)
    return f"plugin {ep.name!r}" + (f" of {dist}" if dist else "")


def _is_builtin(ep: importlib.metadata.EntryPoint) -> bool:
    """Whether ``ep`` is one of lstm_zoo's own plugins (declared by the lstm-zoo distribution)."""
    return _distribution_of(ep) == BUILTIN_DISTRIBUTION


def _load_order(eps: Iterable[importlib.metadata.EntryPoint]) -> list[importlib.metadata.EntryPoint]:
    """Built-in plugins first, then third-party ones, each group by name.

    Registration refuses a name already taken, so whoever loads first keeps a name: loading
    the built-ins first means a plugin called ``aab_dup`` cannot shadow ``weather``.
    """
    return sorted(eps, key=lambda e: (not _is_builtin(e), e.name, e.value))


def _load_plugin(ep: importlib.metadata.EntryPoint) -> None:
    """Load one plugin; on failure undo what it registered and warn, naming it."""
    global _loading_plugin
    before_models, before_recipes = set(_models), set(_recipes)
    _loading_plugin = _plugin_label(ep)
    try:
        target = ep.load()
        if callable(target) and not isinstance(target, types.ModuleType):
            target()
    except Exception as exc:  # a broken plugin must not take the registry down
        for key in set(_models) - before_models:
            del _models[key]
        for key in set(_recipes) - before_recipes:
            del _recipes[key]
        message = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"lstm_zoo {_plugin_label(ep)} ({ep.value}) failed to load and was skipped: {message}",
            RuntimeWarning,
            stacklevel=3,
        )
    finally:
        _loading_plugin = None


def load_plugins(rescan: bool = False) -> None:
    """Discover and load the ``lstm_zoo.plugins`` entry points.

    Runs once, on the first registry lookup.  ``rescan=True`` looks again and loads entry
    points that appeared since (a plugin ``pip install``-ed into a running session); a plugin
    is never loaded twice.
    """
    global _plugins_loaded
    with _lock:
        if _plugins_loaded and not rescan:
            return
        _plugins_loaded = True
        if rescan:
            importlib.invalidate_caches()
        eps = importlib.metadata.entry_points(group=PLUGIN_GROUP)
        for ep in _load_order(eps):
            key = (ep.name, ep.value)
            if key not in _attempted_plugins:  # also skips a distribution seen twice on sys.path
                _attempted_plugins.add(key)
                _load_plugin(ep)


def _suggest(name: str, names: Iterable[str]) -> str:
    names = sorted(names)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    close += [n for n in names if name and name.lower() in n.lower() and n not in close][:3]
    if close:
        return "did you mean " + ", ".join(repr(c) for c in close[:3]) + "?"
    return f"known: {', '.join(names) if names else '(none registered)'}"


def _entry(name: str) -> ModelEntry:
    load_plugins()
    try:
        return _models[name]
    except KeyError:
        raise UnknownNameError(f"unknown model {name!r}; {_suggest(name, _models)}") from None


def model_entry(name: str) -> ModelEntry:
    """The registry entry of model ``name`` (its builder and metadata)."""
    return _entry(name)


def list_models(
    pattern: str = "*", task: str | None = None, pretrained: bool | None = None
) -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted.

    ``task`` keeps only models of that task; ``pretrained=True`` keeps only models with a
    published version, ``False`` only those without.
    """
    load_plugins()
    names = []
    for name, entry in _models.items():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        if task is not None and entry.task != task:
            continue
        if pretrained is not None and bool(_pretrained_of(entry)) != pretrained:
            continue
        names.append(name)
    return sorted(names)


def get_model(name: str, **overrides: Any) -> Any:
    """Build the model registered as ``name``; ``overrides`` replace default hyperparameters.

    An override the builder does not accept raises a ``TypeError`` that lists the accepted ones.
    """
    entry = _entry(name)
    accepted = inspect.signature(entry.builder).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(k for k in overrides if k not in accepted)
    if unknown and not takes_kwargs:
        raise TypeError(
            f"model {name!r} has no hyperparameter(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted) or '(none)'}"
        )
    hparams = {**entry.default_hparams, **overrides}
    return entry.builder(**hparams)


def model_info(name: str) -> dict[str, Any]:
    """Metadata of the model registered as ``name`` (a JSON-friendly dict)."""
    entry = _entry(name)
    return {**entry.info(), "pretrained": list(_pretrained_of(entry))}


def list_recipes(pattern: str = "*") -> list[str]:
    """Registered recipe names matching a shell-style ``pattern``, sorted."""
    load_plugins()
    return sorted(n for n in _recipes if fnmatch.fnmatchcase(n, pattern))


def recipe_entry(name: str) -> RecipeEntry:
    """The registry entry of recipe ``name``."""
    load_plugins()
    try:
        return _recipes[name]
    except KeyError:
        raise UnknownNameError(f"unknown recipe {name!r}; {_suggest(name, _recipes)}") from None


def get_recipe(name: str) -> Any:
    """A fresh recipe object for ``name``."""
    return recipe_entry(name).factory()


def unregister(name: str) -> None:
    """Remove a model (tests and interactive sessions that redefine a builder)."""
    with _lock:
        _models.pop(name, None)

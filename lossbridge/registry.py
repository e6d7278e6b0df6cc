"""The plugin registry: a pluggy ``PluginManager`` for the project ``lossbridge``.

Specs and backends arrive only through the hooks of :mod:`lossbridge.hookspecs`: lossbridge's own
(:mod:`lossbridge.spec._builtin`, :mod:`lossbridge.backends.numpy`) and those of installed
distributions with an entry point in the group ``lossbridge``. Loading happens the first time the
registry is asked for something and imports no ML framework.

Failures are contained: a plugin that fails to import, registers a name another plugin already
has, or registers a malformed spec is reported with a :class:`PluginWarning` naming it, and
everything else keeps working. A name claimed twice raises :class:`~lossbridge.PluginError`
naming both providers when it is asked for. ``LOSSBRIDGE_STRICT_PLUGINS=1`` turns every such
report into an immediate error.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from lossbridge import hookspecs
from lossbridge.errors import BackendError, PluginError, SpecError, UnknownNameError, close_matches
from lossbridge.spec._model import LossSpec, OptimizerSpec, ScheduleSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginWarning",
    "Registry",
    "Resolution",
    "default_registry",
    "normalize",
]

ENTRY_POINT_GROUP = "lossbridge"
_BUILTINS = ("lossbridge.spec._builtin", "lossbridge.backends.numpy")


class PluginWarning(UserWarning):
    """A plugin failed to load or registered something invalid; the rest keeps working."""


def normalize(name: str) -> str:
    """Case- and separator-insensitive form of a name: ``Binary-CrossEntropy`` -> ``binarycrossentropy``."""
    return re.sub(r"[\s_\-.]+", "", name).lower()


@dataclass
class PluginInfo:
    """What one plugin brought: its distribution, and the specs, backends and errors it produced."""

    name: str
    distribution: str = "lossbridge"
    version: str = ""
    specs: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Resolution:
    """What a name means: the spec, the parameter values the name presets, and how it was found.

    ``alternatives`` holds other specs the same framework name means for other input forms
    (torch's ``CrossEntropyLoss`` takes class indices or probabilities), keyed by target form.
    """

    spec: Any
    preset: Mapping[str, Any] = field(default_factory=dict)
    via: str = "name"
    alternatives: tuple[tuple[Any, Mapping[str, Any]], ...] = ()


def native_keys(framework: str, convention: Any) -> dict[str, Mapping[str, Any]]:
    """The normalized framework names of one convention, with their presets.

    The convention's explicit ``names``, the last component of its ``native`` path
    (``torch.nn.MSELoss`` -> ``MSELoss``) with no preset, and for torch every name also without its
    ``Loss`` suffix.
    """
    out: dict[str, Mapping[str, Any]] = {}
    native = convention.native.split()[0] if convention.native else ""
    last = native.split(".")[-1] if native.count(".") else (convention.native.split() or [""])[-1]
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", last or ""):
        out[normalize(last)] = {}
    for name, preset in convention.names.items():
        out[normalize(name)] = preset
    if framework == "torch":
        for key in list(out):
            if key.endswith("loss") and len(key) > 4:
                out.setdefault(key[:-4], out[key])
    return out


def _warn_if_deprecated(spec: Any, framework: str, key: str) -> None:
    """Emit the framework's own DeprecationWarning when ``key`` is a name it has deprecated."""
    convention = spec.conventions.get(framework)
    for name, advice in getattr(convention, "deprecated", {}).items():
        if normalize(name) == key:
            warnings.warn(
                f"{name} is deprecated in {framework}: {advice} (lossbridge resolves it to "
                f"{spec.name!r} as {framework} does)",
                DeprecationWarning,
                stacklevel=4,
            )


def _strict() -> bool:
    return os.environ.get("LOSSBRIDGE_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


class Registry:
    """Specs, backends and overrides, gathered from plugins through pluggy hooks."""

    def __init__(self, *, entry_points: bool = True, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._use_entry_points = entry_points
        self._use_builtins = builtins
        self._extra: list[tuple[Any, str, str]] = []
        self._loaded = False
        self.plugins: dict[str, PluginInfo] = {}
        self._specs: dict[str, tuple[Any, str]] = {}
        self._spec_names: dict[str, str] = {}
        self._conflicts: dict[str, list[str]] = {}
        self._backends: dict[str, tuple[Any, str]] = {}
        self._backend_names: dict[str, str] = {}
        self._overrides: dict[tuple[str, str, str], tuple[Callable[..., Any], str]] = {}
        self._native: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] | None = None
        self._lock = threading.RLock()

    # -- loading ------------------------------------------------------------------------------------
    def add_plugin(self, plugin: Any, name: str, *, distribution: str = "") -> None:
        """Register a plugin object by hand (tests, notebooks); it is loaded with the others."""
        with self._lock:
            self._extra.append((plugin, name, distribution or name))
            if self._loaded:
                self._register(plugin, name, distribution or name, "")
                self._collect_from(name)
                self._native = None

    def _report(self, info: PluginInfo, message: str, error: Exception | None = None) -> None:
        info.errors.append(message)
        if _strict():
            if isinstance(error, PluginError):
                raise error
            raise PluginError(message, plugin=info.distribution) from error
        warnings.warn(message, PluginWarning, stacklevel=4)

    def _register(self, plugin: Any, name: str, distribution: str, version: str) -> None:
        self.plugins[name] = PluginInfo(name, distribution, version)
        self.pm.register(plugin, name=name)

    def _load_entry_points(self) -> None:
        import importlib.metadata  # on first use, not with `import lossbridge` (~15 ms)

        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            version = ep.dist.version if ep.dist is not None else ""
            if ep.name in self.plugins or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import-time failure of a third party
                info = self.plugins.setdefault(ep.name, PluginInfo(ep.name, dist, version))
                self._report(
                    info,
                    f"lossbridge plugin {ep.name!r} from distribution {dist!r} failed to import: "
                    f"{type(exc).__name__}: {exc}; the other plugins keep working",
                    exc,
                )
                continue
            self._register(plugin, ep.name, dist, version)

    def _ensure_loaded(self) -> None:
        """Load every plugin once; concurrent first callers wait for the one that loads."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            if self._use_builtins:
                for module in _BUILTINS:
                    self._register(importlib.import_module(module), module, "lossbridge", _version())
            for plugin, name, dist in self._extra:
                self._register(plugin, name, dist, "")
            if self._use_entry_points:
                self._load_entry_points()
            for name in list(self.plugins):
                self._collect_from(name)
            self._loaded = True

    def _collect_from(self, plugin_name: str) -> None:
        hooks = (
            (self.pm.hook.lossbridge_register_specs, self._add_spec),
            (self.pm.hook.lossbridge_register_backends, self._add_backend),
            (self.pm.hook.lossbridge_register_overrides, self._add_override),
        )
        info = self.plugins[plugin_name]
        for hook, add in hooks:
            for impl in hook.get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue
                try:
                    impl.function(register=self._callback(add, info))
                except Exception as exc:
                    self._report(
                        info,
                        f"lossbridge plugin {plugin_name!r} from distribution {info.distribution!r} "
                        f"raised in {hook.name}: {type(exc).__name__}: {exc}",
                        exc,
                    )

    # -- the register callbacks -------------------------------------------------------------------
    def _callback(self, add: Callable[..., None], info: PluginInfo) -> Callable[..., None]:
        """The ``register`` a hook receives: one bad item is reported, the next still registers."""

        def register(*args: Any, **kwargs: Any) -> None:
            try:
                add(info, *args, **kwargs)
            except PluginError as exc:
                self._report(info, str(exc), exc)

        return register

    def _add_spec(self, info: PluginInfo, spec: Any) -> None:
        if not isinstance(spec, (LossSpec, OptimizerSpec, ScheduleSpec)):
            raise SpecError(
                f"plugin {info.distribution!r} registered {spec!r}, which is not a LossSpec, OptimizerSpec "
                "or ScheduleSpec",
                plugin=info.distribution,
            )
        spec.validate_declaration(plugin=info.distribution)
        keys = [normalize(spec.name)] + [normalize(a) for a in spec.aliases]
        for key in keys:
            owner = self._spec_names.get(key)
            if (
                (owner is not None
                and owner != spec.name)
                or (owner == spec.name and self._specs[spec.name][1] != info.distribution)
            ):
                other = self._specs[owner][1]
                self._conflicts.setdefault(key, [other]).append(info.distribution)
                raise PluginError(
                    f"name {key!r} is provided twice: by {other!r} (spec {owner!r}) and by "
                    f"{info.distribution!r} (spec {spec.name!r}); asking for it raises until one is "
                    "uninstalled",
                    plugin=info.distribution,
                )
        self._specs[spec.name] = (spec, info.distribution)
        for key in keys:
            self._spec_names[key] = spec.name
        self._native = None
        info.specs.append(spec.name)

    def _add_backend(self, info: PluginInfo, backend: Any) -> None:
        keys = [normalize(backend.name)] + [normalize(a) for a in backend.aliases]
        for key in keys:
            if key in self._backend_names:
                other = self._backends[self._backend_names[key]][1]
                raise PluginError(
                    f"backend name {key!r} is provided twice: by {other!r} and by {info.distribution!r}",
                    plugin=info.distribution,
                )
        self._backends[backend.name] = (backend, info.distribution)
        for key in keys:
            self._backend_names[key] = backend.name
        info.backends.append(backend.name)

    def _add_override(
        self, info: PluginInfo, spec_name: str, backend_name: str, factory: Callable[..., Any], kind: str = "loss"
    ) -> None:
        self._overrides[(normalize(spec_name), normalize(backend_name), kind)] = (factory, info.distribution)
        info.overrides.append(f"{spec_name}@{backend_name}")

    # -- queries ------------------------------------------------------------------------------------
    def spec(self, name: str) -> LossSpec | OptimizerSpec | ScheduleSpec:
        """The spec called ``name`` (a spec name, an alias, or a framework's name for it)."""
        return self.resolve(name).spec

    def _native_index(self) -> dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]]:
        """(framework, normalized name) -> the specs that framework's name means, with presets."""
        with self._lock:
            if self._native is None:
                index: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] = {}
                for spec, _ in self._specs.values():
                    for fw, conv in spec.conventions.items():
                        for key, preset in native_keys(fw, conv).items():
                            index.setdefault((fw, key), []).append((spec.name, preset))
                self._native = index
            return self._native

    def _claims(self, key: str, framework: str | None) -> list[tuple[str, Mapping[str, Any]]]:
        index = self._native_index()
        if framework is not None:
            return list(index.get((framework, key), []))
        return [claim for (_, k), claims in index.items() if k == key for claim in claims]

    def resolve(self, name: str, convention: str | None = None) -> Resolution:
        """What ``name`` means under ``convention``: a framework's own name first, then lossbridge's.

        Under a convention, that framework's names win (Caffe's ``HingeLoss`` under ``"caffe"``);
        otherwise spec names and aliases, then any framework's name that means one spec.
        """
        self._ensure_loaded()
        key = normalize(name)
        if key in self._conflicts:
            raise PluginError(
                f"{name!r} is provided by more than one plugin: {', '.join(self._conflicts[key])}; "
                "uninstall one of them"
            )
        framework = convention.lower() if isinstance(convention, str) else None
        if framework is not None:
            found = self._from_claims(name, self._claims(key, framework), f"{framework} name")
            if found is not None:
                _warn_if_deprecated(found.spec, framework, key)
                return found
        if key in self._spec_names:
            return Resolution(self._specs[self._spec_names[key]][0], {}, "name")
        found = self._from_claims(name, self._claims(key, None), "framework name")
        if found is not None:
            return found
        raise UnknownNameError(f"unknown loss, optimizer or schedule {name!r}{self._hint(key)}")

    def _from_claims(
        self, name: str, claims: list[tuple[str, Mapping[str, Any]]], via: str
    ) -> Resolution | None:
        specs = list(dict.fromkeys(spec for spec, _ in claims))
        if not specs:
            return None
        if len(specs) == 1:
            presets = [dict(p) for s, p in claims if s == specs[0]]
            preset = presets[0] if all(p == presets[0] for p in presets) else {}
            return Resolution(self._specs[specs[0]][0], preset, via)
        ordered = sorted((self._specs[s][0] for s in specs), key=lambda spec: _target_form(spec) != "integer")
        first, *others = ordered
        if via != "framework name" and all(_target_form(o) != _target_form(first) for o in others):
            by_spec = {s: p for s, p in reversed(claims)}
            alternatives = tuple((o, by_spec[o.name]) for o in others)
            return Resolution(first, by_spec[first.name], via, alternatives)
        meanings = ", ".join(sorted(specs))
        raise UnknownNameError(
            f"{name!r} means different losses in different frameworks ({meanings}); pass convention= "
            "to say which framework's meaning you want, or use one of those spec names"
        )

    def _hint(self, key: str) -> str:
        names = {k: self._spec_names[k] for k in self._spec_names}
        for (_, k), claims in self._native_index().items():
            names.setdefault(k, claims[0][0])
        hints = list(dict.fromkeys(names[h] for h in close_matches(key, sorted(names))))
        suggestion = f"; did you mean {', '.join(map(repr, hints))}?" if hints else ""
        return suggestion + " (see lossbridge.catalog() for all names)"

    def specs(self) -> Iterator[tuple[LossSpec | OptimizerSpec, str]]:
        """Every registered spec with its distribution."""
        self._ensure_loaded()
        yield from self._specs.values()

    def provider(self, spec_name: str) -> str:
        """The distribution that registered ``spec_name``."""
        self._ensure_loaded()
        return self._specs[spec_name][1]

    def backends(self) -> dict[str, Any]:
        """Every registered backend by name, installed or not."""
        self._ensure_loaded()
        return {name: b for name, (b, _) in self._backends.items()}

    def backend(self, name: str) -> Any:
        """The backend called ``name``; errors say what is installed and how to add one."""
        self._ensure_loaded()
        key = normalize(name)
        installed = [n for n, (b, _) in self._backends.items() if b.available()]
        if key not in self._backend_names:
            hint = _KNOWN_BACKENDS.get(key)
            add = f"; install it with: pip install {hint}" if hint else ""
            raise BackendError(f"unknown backend {name!r}{add}. Installed backends: {', '.join(installed) or 'none'}")
        backend = self._backends[self._backend_names[key]][0]
        if not backend.available():
            raise BackendError(
                f"backend {backend.name!r} needs {', '.join(backend.requires)}, which is not "
                f"installed; install it with: pip install {backend.distribution}. Installed "
                f"backends: {', '.join(installed) or 'none'}"
            )
        return backend

    def override(self, spec_name: str, backend_name: str, kind: str) -> Callable[..., Any] | None:
        """The override factory for this spec on this backend, if a plugin registered one."""
        self._ensure_loaded()
        found = self._overrides.get((normalize(spec_name), normalize(backend_name), kind))
        return found[0] if found else None


#: Backends lossbridge knows how to install, by normalized name or alias.
_KNOWN_BACKENDS = {
    "torch": "lossbridge-torch",
    "pytorch": "lossbridge-torch",
    "tensorflow": '"lossbridge-tensorflow[cpu]"',
    "tf": '"lossbridge-tensorflow[cpu]"',
    "keras": '"lossbridge-tensorflow[cpu]"',
    "jax": "lossbridge-jax",
    "arrayapistrict": "lossbridge-strict",
    "strict": "lossbridge-strict",
}


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("lossbridge")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _target_form(spec: Any) -> str:
    """``"integer"`` or ``"floating"``: the form of a loss's target (how a shared name dispatches)."""
    from lossbridge.spec._domain import domain

    target = getattr(spec, "target", None)
    if target is None or callable(target.domain):
        return "none"
    return "integer" if domain(target.domain).integer else "floating"


_DEFAULT: Registry | None = None
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry ``lossbridge.get`` uses (created once, also under threads)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Registry()
    return _DEFAULT


def reset_default_registry() -> None:
    """Forget the process-wide registry, so plugins installed since are discovered (tests)."""
    global _DEFAULT
    _DEFAULT = None

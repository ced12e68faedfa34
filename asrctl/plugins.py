"""The plugin manager: built-in plugins, entry-point plugins, allow/deny lists and isolation.

External plugins are distributions exposing the "asrctl" entry-point group. They are loaded once,
on first use. A plugin that fails to import, or whose hook raises, is reported on stderr with its
name and left out; every other plugin and command keeps working (ASRCTL_STRICT_PLUGINS=1 makes
such a failure fatal instead).

  ASRCTL_LOAD_PLUGINS     comma list of the external plugins to load; "" loads none
  ASRCTL_DISABLE_PLUGINS  comma list of external plugins to leave out
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

import pluggy

from asrctl import hookspecs
from asrctl.errors import AsrctlError
from asrctl.registry import Registry
from asrctl.specs import BackendSpec, EngineSpec, ExporterSpec, FormatSpec, SegmenterSpec, TrainerSpec

ENTRY_POINT_GROUP = "asrctl"
BUILTIN_PLUGINS = ("asrctl.default_plugins.nemo_manifest", "asrctl.default_plugins.local_engine",
                   "asrctl.default_plugins.ray_engine", "asrctl.default_plugins.formats",
                   "asrctl.default_plugins.silero")
# hook name -> (registry kind, spec type); register_commands is handled by the CLI.
REGISTRY_HOOKS = {
    "register_backends": ("backend", BackendSpec),
    "register_formats": ("format", FormatSpec),
    "register_trainers": ("trainer", TrainerSpec),
    "register_engines": ("engine", EngineSpec),
    "register_segmenters": ("segmenter", SegmenterSpec),
    "register_exporters": ("exporter", ExporterSpec),
}


class PluginLoadError(AsrctlError):
    """A plugin failed while ASRCTL_STRICT_PLUGINS=1."""


@dataclass
class PluginInfo:
    name: str
    version: str | None
    module: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


def normalize_name(name: str) -> str:
    """Distribution names compare as pip does: case- and separator-insensitive."""
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _env_list(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {normalize_name(n) for n in value.split(",") if n.strip()}


def _strict() -> bool:
    return os.environ.get("ASRCTL_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


class Plugins:
    """Loaded plugins and the registries their hooks filled. Use `get_plugins()` for the shared one."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] = {}
        from asrctl import __version__

        for module_name in BUILTIN_PLUGINS:
            self._add(module_name, importlib.import_module(module_name), __version__, builtin=True)
        self._load_entry_points()

    # -- loading ---------------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        allow = _env_list("ASRCTL_LOAD_PLUGINS")
        deny = _env_list("ASRCTL_DISABLE_PLUGINS") or set()
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else ep.name
            name = normalize_name(dist)
            if name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(name)
            wanted = {name, normalize_name(ep.name)}
            if (allow is not None and not wanted & allow) or wanted & deny:
                continue
            version = ep.dist.version if ep.dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:  # any failure of third-party code must stay contained
                self.info[name] = PluginInfo(name, version, ep.value, builtin=False)
                self._fail(name, "failed to load", exc)
                continue
            self._add(ep.value, plugin, version, builtin=False, name=name)

    def _add(self, module: str, plugin: object, version: str | None, *, builtin: bool, name: str | None = None) -> None:
        name = name or module
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects hooks that match no spec, or bad signatures
            self.info[name] = PluginInfo(name, version, module, builtin)
            self._fail(name, "is not a valid asrctl plugin", exc)
            return
        hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        self.info[name] = PluginInfo(name, version, module, builtin, hooks)

    def _fail(self, name: str, what: str, exc: BaseException) -> None:
        message = f"plugin {name} {what}: {type(exc).__name__}: {exc}"
        self.info[name].error = f"{type(exc).__name__}: {exc}"
        if _strict():
            raise PluginLoadError(message + " (ASRCTL_STRICT_PLUGINS is set)") from exc
        print(f"asrctl: {message} (hide it with ASRCTL_DISABLE_PLUGINS={name})", file=sys.stderr)

    # -- registries ------------------------------------------------------------------------------

    def registry(self, hook_name: str) -> Registry:
        """Call one register_* hook on every plugin, each with its own `register`, once."""
        if hook_name not in self._registries:
            kind, spec_type = REGISTRY_HOOKS[hook_name]
            registry: Registry = Registry(kind)
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                self.call_isolated(impl.plugin_name, impl.function,
                                   self._register_into(registry, spec_type, impl.plugin_name))
            self._registries[hook_name] = registry
        return self._registries[hook_name]

    def call_isolated(self, plugin: str, function: Callable, *args: object) -> None:
        """Run one plugin's hook; a failure names the plugin instead of breaking the command."""
        try:
            function(*args)
        except PluginLoadError:
            raise
        except Exception as exc:
            self._fail(plugin, f"raised in {function.__name__}", exc)

    @staticmethod
    def _register_into(registry: Registry, spec_type: type, plugin: str) -> Callable[[object], None]:
        def register(spec: object) -> None:
            if not isinstance(spec, spec_type):
                raise TypeError(f"register() takes a {spec_type.__name__}, got {type(spec).__name__}")
            registry.add(spec, plugin)

        return register

    def hookimpls(self, hook_name: str) -> list[pluggy.HookImpl]:
        return getattr(self.pm.hook, hook_name).get_hookimpls()

    def summary(self, include_builtin: bool = False) -> list[dict]:
        """One dict per plugin: name, version, hooks, and what each registry holds from it."""
        registries = {kind: self.registry(hook) for hook, (kind, _) in REGISTRY_HOOKS.items()}
        rows = []
        for info in self.info.values():
            if info.builtin and not include_builtin:
                continue
            row = {"name": info.name, "version": info.version, "builtin": info.builtin, "hooks": info.hooks}
            for kind, registry in registries.items():
                row[f"{kind}s"] = registry.by_plugin(info.name)
            row["error"] = info.error
            rows.append(row)
        return sorted(rows, key=lambda r: (r["builtin"], r["name"]))


@cache
def get_plugins() -> Plugins:
    """The process-wide plugin manager, loaded on first use."""
    return Plugins()


def backends() -> Registry[BackendSpec]:
    return get_plugins().registry("register_backends")


def formats() -> Registry[FormatSpec]:
    return get_plugins().registry("register_formats")


def trainers() -> Registry[TrainerSpec]:
    return get_plugins().registry("register_trainers")


def engines() -> Registry[EngineSpec]:
    return get_plugins().registry("register_engines")


def segmenters() -> Registry[SegmenterSpec]:
    return get_plugins().registry("register_segmenters")


def exporters() -> Registry[ExporterSpec]:
    return get_plugins().registry("register_exporters")

"""Named things plugins provide (backends, formats, ...), and the lookup that suggests a near name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from asrctl.errors import AsrctlError

T = TypeVar("T")


class UnknownNameError(AsrctlError):
    """A backend, format, trainer or engine name that no installed plugin provides."""


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    """`unknown backend 'x' (did you mean 'y'?); known backends: ...` in one line."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(known) if known else "none installed (see `asrctl plugins`)"
    return f"unknown {kind} {name!r}{hint}; known {kind}s: {listing}"


def refuse_undeclared(owner: str, flag: str, given: Iterable[str], declared: Iterable[str]) -> None:
    """Refuse the first key of `given` (-O, -E, -V ...) that `owner` does not declare, in one line."""
    declared = list(declared)
    unknown = sorted(set(given) - set(declared))
    if unknown and not declared:
        raise AsrctlError(f"{owner} takes no {flag} options (got {flag} {unknown[0]})")
    if unknown:
        raise AsrctlError(f"{owner}: " + unknown_name_message(f"{flag} option", unknown[0], declared))


class Registry(Generic[T]):
    """Specs of one kind by name, remembering which plugin provided each."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, T] = {}
        self._providers: dict[str, str] = {}

    def add(self, spec: T, plugin: str) -> None:
        name = spec.name  # type: ignore[attr-defined]
        if name in self._specs:
            raise AsrctlError(
                f"{self.kind} {name!r} is registered by both {self._providers[name]} and {plugin}; "
                f"disable one with ASRCTL_DISABLE_PLUGINS"
            )
        self._specs[name] = spec
        self._providers[name] = plugin

    def get(self, name: str) -> T:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError(unknown_name_message(self.kind, name, self._specs)) from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def by_plugin(self, plugin: str) -> list[str]:
        return sorted(n for n, p in self._providers.items() if p == plugin)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[T]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

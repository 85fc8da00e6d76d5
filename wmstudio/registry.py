"""One registry idiom for everything a config names by a word: ``register`` / ``get`` / ``names``.

A ``Registry`` maps names to entries of one kind (model factories, embedding methods, attacks, trigger
schemes, data sets, landscape kinds). An entry is registered either as the object itself (also as a
decorator) or as a ``Lazy`` reference, ``"package.module:attribute"``, imported on its first ``get``:
so a torch-free module (the config schema, the app's form) can list the names and their help without
loading PyTorch, and the implementing modules never import the registry back.

``get`` of an unknown name raises ConfigError naming the config field and the known names.
Torch-free and Qt-free; imports nothing of wmstudio but its errors.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from wmstudio.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Lazy:
    """An entry not yet imported: ``target`` is ``"package.module:attribute"``."""

    target: str

    def load(self) -> Any:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


class Registry(Generic[T]):
    """Named entries of one ``kind`` (a word for messages: "data set"), chosen by config ``field``.

    ``also`` is appended to the list of choices in the unknown-name message (e.g. "torchvision:<name>"
    for models a registry does not hold).
    """

    def __init__(self, kind: str, field: str, also: str = "") -> None:
        self.kind, self.field, self.also = kind, field, also
        self._entries: dict[str, T | Lazy] = {}
        self._help: dict[str, str] = {}

    @overload
    def register(self, name: str, obj: None = None, *, help: str = "") -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T | Lazy, *, help: str = "") -> T | Lazy: ...

    def register(self, name: str, obj: T | Lazy | None = None, *, help: str = "") -> Any:
        """Add ``obj`` under ``name`` (a second entry of one name is refused: ValueError).
        Without ``obj``, a decorator that registers what it decorates and returns it unchanged."""
        if obj is None:
            def decorate(o: T) -> T:
                self.register(name, o, help=help)
                return o

            return decorate
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = obj
        self._help[name] = help
        return obj

    def unregister(self, name: str) -> None:
        """Remove the entry ``name`` (a plug-in unloaded, a test's entry removed); KeyError if absent."""
        del self._entries[name]
        del self._help[name]

    def get(self, name: str) -> T:
        """The entry ``name`` (a Lazy one imported now, once); ConfigError for a name not registered."""
        try:
            entry = self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(self.field, f"unknown {self.kind} {name!r}; known: {self.choices_text()}") from None
        if isinstance(entry, Lazy):
            entry = self._entries[name] = entry.load()
        return entry  # type: ignore[return-value]

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def list(self) -> list[tuple[str, str]]:
        """(name, help) of every entry, in registration order."""
        return [(n, self._help[n]) for n in self._entries]

    def help(self, name: str) -> str:
        return self._help.get(name, "")

    def described(self) -> str:
        """Every entry with its help ("a: what a is; b: what b is"), for a config field's help text, so the
        registry is the one place an entry is described."""
        return "; ".join(f"{n}: {h}" if h else n for n, h in self.list())

    def choices_text(self) -> str:
        text = ", ".join(self._entries)
        return f"{text}, or {self.also}" if self.also else text

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"

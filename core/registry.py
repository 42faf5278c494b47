"""A registry of named things (arms, payload formats): registered once, looked up by name,
an unknown name refused with the known ones listed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Items by name. `order` sorts `names()` (default: by name); `unknown` is the KeyError
    subclass `get` raises, its message naming the known items in that order."""

    def __init__(
        self,
        what: str,
        unknown: type[KeyError],
        order: Callable[[T], Any] | None = None,
    ) -> None:
        self._what = what
        self._unknown = unknown
        self._order = order
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self._what} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names())
            raise self._unknown(f"unknown {self._what} {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> tuple[str, ...]:
        if self._order is None:
            return tuple(sorted(self._items))
        order = self._order
        return tuple(n for n, _ in sorted(self._items.items(), key=lambda kv: order(kv[1])))

"""Name → object registries: the one extension point for strategies, models and datasets."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry(dict, Generic[T]):
    """A plain dict filled by the `register(name)` decorator."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self[name] = obj
            return obj

        return add

    def known(self) -> str:
        return ", ".join(sorted(self))

    def get_or_raise(self, name: str) -> T:
        if name not in self:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {self.known()}")
        return self[name]

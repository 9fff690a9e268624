"""Record: the base of lxrun's immutable value objects (TaskSpec, Result, mount steps, ...).

Plain classes with __slots__ rather than dataclasses: everything `lxrun exec` imports is paid on
every CLI start, and on the machines we measured, importing dataclasses and creating a dozen of
them costs ~10 ms, two thirds of the whole CLI budget. A subclass lists its fields in __slots__,
validates in __init__ and hands the values to Record.__init__; afterwards nothing can change.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs ~2 ms to import; mypy honours this name as typing's
if TYPE_CHECKING:
    from typing import Any, Self


class Record:
    __slots__ = ()

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            names.extend(getattr(klass, "__slots__", ()))
        return tuple(names)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.fields()}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed, validated again (fields are the __init__ arguments)."""
        return type(self)(**{**self.as_dict(), **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and type(other) is type(self) and other.as_dict() == self.as_dict()

    def __hash__(self) -> int:
        return hash((type(self), *(repr(value) for value in self.as_dict().values())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"{type(self).__name__}({fields})"

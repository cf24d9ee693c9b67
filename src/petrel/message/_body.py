"""The multi-section body wrapper.

It subclasses ``tuple``, which a compiled (mypyc) module cannot do, so it lives
in this small module that always stays Python.
"""

from __future__ import annotations

from typing import Any, Self


class Sections(tuple[Any, ...]):
    """A body of several sections: ``data`` sections (``bytes``) or ``amqp-sequence`` (lists)::

        Message(Sections(b"part one", b"part two"))   # two data sections
        Message(Sections([1, 2], [3]))                # two amqp-sequence sections

    A single section needs no wrapper: ``Message(b"...")`` is one data section
    and ``Message([1, 2], body_type="sequence")`` one amqp-sequence section.
    """

    __slots__ = ()

    def __new__(cls, *parts: Any) -> Self:
        return tuple.__new__(cls, parts)

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"Sections({', '.join(repr(p) for p in self)})"

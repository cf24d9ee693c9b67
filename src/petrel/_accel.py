"""Which build of Petrel's hot path runs: compiled by mypyc, or the pure-Python source.

A wheel built where a C compiler was found holds each module named in
:data:`COMPILED_MODULES` twice: the extension mypyc made from it
(``_decode.cpython-311-x86_64-linux-gnu.so``) beside the source it was made from
(``_decode.py``).  Python's import system takes the extension when both are there.
With ``PETREL_PURE_PYTHON=1`` in the environment, :func:`install` (run when this
module is imported, which ``petrel/__init__.py`` does first of all) puts a finder in front that
loads the source instead, for every module of the list at once: compiled modules call
each other's functions directly, so the group is swapped whole or not at all.

A wheel built without a compiler, an sdist installed without one, or an editable
install holds only the sources; then both settings run the same pure Python.  In a
checkout, ``make accel`` (``python hatch_build.py``) compiles the group in place; a
source edited after that is newer than its extension, and then :func:`install` runs
every listed module from source (with a log line) rather than a stale build; so it
does when a build lacks the extension of one listed module (a partial build).

This module imports nothing from Petrel, so the build hook (``hatch_build.py``) reads
the list from it without importing the package.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from types import ModuleType

__all__ = [
    "COMPILED_MODULES",
    "PURE_PYTHON_VARIABLE",
    "backend",
    "compiled_available",
    "install",
]

#: The modules a compiled build compiles, as one mypyc group.  Everything else stays
#: Python in every build (spec classes are made with ``exec`` at import time).
COMPILED_MODULES: tuple[str, ...] = (
    "petrel.codec._scalars",
    "petrel.codec._decode",
    "petrel.codec._encode",
    "petrel.codec._wire",
    "petrel.engine.serial",
    "petrel.engine.framing",
    "petrel.engine.output",
    "petrel.engine.connection",
    "petrel.engine.session",
    "petrel.engine.outgoing",
    "petrel.engine.link",
    "petrel.engine.delivery",
    "petrel.message._sections",
    "petrel.message._view",
    "petrel.broker.entry",
    "petrel.broker.queues",
    "petrel.broker.links",
    "petrel.broker.core",
    "petrel.broker.connection",
    "petrel.server.connection",
    "petrel.driver.protocol",
    "petrel.router.forwarding",
    "petrel.router.table",
    "petrel.router.connection",
)

#: Set to ``1`` to run the pure-Python source of a compiled build.
PURE_PYTHON_VARIABLE = "PETREL_PURE_PYTHON"

_NAMES = frozenset(COMPILED_MODULES)


class _SourceFirst(MetaPathFinder):
    """Finds the ``.py`` file of a compiled module before the extension beside it."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in _NAMES or path is None:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path:
            source = os.path.join(entry, leaf)
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def _unusable() -> tuple[list[str], list[str]]:
    """Listed modules a compiled build cannot run: those older than their source, and,
    when some are built, those with no extension beside them (a partial build)."""
    here = os.path.dirname(os.path.abspath(__file__))
    stale = []
    missing = []
    built_any = False
    for name in COMPILED_MODULES:
        base = os.path.join(here, *name.split(".")[1:])
        try:
            source = os.stat(base + ".py").st_mtime
        except OSError:
            continue
        built = None
        for suffix in EXTENSION_SUFFIXES:
            try:
                built = os.stat(base + suffix).st_mtime
            except OSError:
                continue
            break
        if built is None:
            missing.append(name)
            continue
        built_any = True
        if built < source:
            stale.append(name)
    return stale, missing if built_any else []


def _stale() -> list[str]:
    """Listed modules a compiled build cannot run (see :func:`_unusable`)."""
    stale, missing = _unusable()
    return stale + missing


def install() -> None:
    """Make the sources win when ``PETREL_PURE_PYTHON=1``, or when a compiled module is
    older than its source; do nothing otherwise."""
    wanted = os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")
    if not wanted:
        stale, missing = _unusable()
        if stale or missing:
            # A log line, not a warning: a test run that turns warnings into errors must
            # still run (on the sources), and say why.
            why = []
            if stale:
                verb = " is" if len(stale) == 1 else " are"
                why.append(f"the compiled {', '.join(stale)}{verb} older than the source")
            if missing:
                why.append(f"the compiled build has no {', '.join(missing)}")
            logging.getLogger("petrel").warning(
                "%s; running the pure-Python modules (`make accel` rebuilds)", "; ".join(why)
            )
            wanted = True
    if wanted and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst())


def compiled_available() -> bool:
    """Whether this installation holds a compiled build that is not older than its
    sources (whatever :func:`backend` runs in this process)."""
    here = os.path.dirname(os.path.abspath(__file__))
    base = os.path.join(here, *COMPILED_MODULES[0].split(".")[1:])
    built = any(os.path.exists(base + suffix) for suffix in EXTENSION_SUFFIXES)
    return built and not _stale()


def backend() -> str:
    """``"mypyc"`` when the compiled modules are the ones running, else ``"python"``."""
    from .codec import _decode

    origin = getattr(_decode, "__file__", None) or ""
    return "mypyc" if origin.endswith(tuple(EXTENSION_SUFFIXES)) else "python"


install()

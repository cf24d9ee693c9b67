"""One process at a time through the suite's one-off setup steps.

Building Proton with Cyrus SASL, compiling Proton's native examples and
``npm ci`` for rhea each write into a shared place in the checkout
(``build/``, ``tests/interop/rhea/node_modules``).  Under pytest-xdist two
workers may reach the same step at once, and so may two pytest sessions in
one checkout; :func:`exclusive` makes the second wait for the first, which
then finds the work done.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

#: Where the suite's builds and their lock files live: the checkout's ``build/`` (ignored
#: by git), or ``$PETREL_TEST_CACHE`` if set (``.ci/run`` points it outside the fresh
#: clone, so a machine that runs CI again reuses what is built already).  Each build's
#: name holds what it is built from, so a change of version or source builds anew.
BUILD = Path(os.environ.get("PETREL_TEST_CACHE") or Path(__file__).resolve().parents[2] / "build")


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold the lock ``build/NAME.lock`` (an advisory ``flock``, freed when the process
    ends however it ends) for the ``with`` block."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""``import petrel`` exposes the client lazily; its three name lists must agree."""

from __future__ import annotations

import ast
from pathlib import Path

import petrel
import petrel.client

INIT = Path(petrel.__file__)


def _type_checking_client_imports() -> set[str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module == "client":
                    return {alias.name for alias in stmt.names}
    raise AssertionError("no `if TYPE_CHECKING: from .client import ...` in petrel/__init__.py")


def test_lazy_client_names_match_the_type_checking_imports_and_all() -> None:
    lazy = set(petrel._CLIENT_NAMES)
    assert lazy == _type_checking_client_imports()
    assert lazy <= set(petrel.__all__)
    assert lazy <= set(petrel.client.__all__)


def test_every_lazy_name_resolves() -> None:
    for name in sorted(petrel._CLIENT_NAMES):
        assert getattr(petrel, name) is getattr(petrel.client, name)
    assert petrel.blocking.connect is not None

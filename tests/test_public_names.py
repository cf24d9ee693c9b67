"""Public names: ``import petrel``'s lazy client names, and the sans-IO library's API.

``import petrel`` exposes the client lazily; its three name lists must agree.
The library packages (codec, types, errors, spec, message, engine) promise
what their ``__all__`` holds: every such name has a docstring, and the engine
guide names it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

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


# --- the sans-IO library's public API (docs/engine.md, "The public API") ------------------------

#: The packages other products may build on; their ``__all__`` is the stable API.
LIBRARY = ("petrel.codec", "petrel.types", "petrel.errors", "petrel.spec", "petrel.message",
           "petrel.engine")  # fmt: skip

#: Public data names that still lack a ``#:`` comment, each with who owes it; empty it when done.
UNDOCUMENTED_FOR_NOW: dict[str, str] = {}

ENGINE_GUIDE = Path(__file__).parents[1] / "docs" / "engine.md"


def _public(package: str) -> list[tuple[str, object]]:
    module = importlib.import_module(package)
    return [(name, getattr(module, name)) for name in module.__all__]


def _assignment_documented(package: str, name: str) -> bool:
    """Whether ``name`` is assigned at the top of a module of ``package`` with a ``#:`` comment
    above it or a string just below it, or is described in that module's docstring."""
    root = importlib.import_module(package)
    files = [Path(root.__file__)]  # type: ignore[arg-type]
    if files[0].name == "__init__.py":
        files += sorted(files[0].parent.glob("*.py"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = text.splitlines()
        for index, node in enumerate(tree.body):
            targets = (
                [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
            )
            if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
                continue
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            below = tree.body[index + 1] if index + 1 < len(tree.body) else None
            string_below = (
                isinstance(below, ast.Expr)
                and isinstance(below.value, ast.Constant)
                and isinstance(below.value.value, str)
            )
            described = f"``{name}``" in (ast.get_docstring(tree) or "")
            # A run of names under one comment (CAP_QUEUE, CAP_TOPIC) shares it.
            k = node.lineno - 2
            while k >= 0 and lines[k] and not lines[k].startswith(("#:", " ", "\t")):
                if not re.match(r"^[A-Z_][A-Z0-9_]*(: .*)? = ", lines[k]):
                    break
                k -= 1
            shared = k >= 0 and lines[k].startswith("#:")
            if above.startswith("#:") or string_below or described or shared:
                return True
    return False


@pytest.mark.parametrize("package", LIBRARY)
def test_all_names_resolve_once(package: str) -> None:
    names = importlib.import_module(package).__all__
    assert len(names) == len(set(names)), f"{package}.__all__ repeats a name"
    for name, value in _public(package):
        assert value is not None, f"{package}.{name}"


# mypyc does not keep the docstrings of what it compiles (``help()`` on a compiled build
# shows signatures only): the docstrings are checked where they are, in the source.
@pytest.mark.pure_python
@pytest.mark.parametrize("package", LIBRARY)
def test_every_public_name_has_a_docstring(package: str) -> None:
    missing = []
    for name, value in _public(package):
        qualified = f"{package}.{name}"
        if inspect.isclass(value):
            documented = bool(value.__dict__.get("__doc__"))
        elif inspect.ismodule(value) or inspect.isroutine(value):
            documented = bool(value.__doc__)
        else:  # data, type aliases
            documented = _assignment_documented(package, name)
        if not documented and qualified not in UNDOCUMENTED_FOR_NOW:
            missing.append(qualified)
    assert not missing, f"public names without a docstring (or a #: comment): {missing}"


def test_the_undocumented_for_now_list_is_still_needed() -> None:
    for qualified in UNDOCUMENTED_FOR_NOW:
        package, name = qualified.rsplit(".", 1)
        assert name in importlib.import_module(package).__all__, f"{qualified} is not public"
        value = getattr(importlib.import_module(package), name)
        if inspect.isroutine(value) or inspect.isclass(value):
            documented = bool(value.__doc__)
        else:
            documented = _assignment_documented(package, name)
        assert not documented, f"{qualified} is documented now: take it out of UNDOCUMENTED_FOR_NOW"


@pytest.mark.parametrize("package", LIBRARY)
def test_the_engine_guide_names_every_public_name(package: str) -> None:
    guide = ENGINE_GUIDE.read_text(encoding="utf-8")
    section = guide.split("## The public API", 1)[-1].split("\n## ", 1)[0]
    missing = [name for name, _ in _public(package) if f"`{name}`" not in section]
    assert not missing, (
        f"docs/engine.md, 'The public API', does not name {package}'s {missing}: a public "
        "name is a promise; say what it is for"
    )


def test_a_moved_name_still_works_with_a_deprecation_warning() -> None:
    import petrel.codec
    import petrel.message

    assert "skip_value" not in petrel.message.__all__
    with pytest.warns(DeprecationWarning, match=r"use petrel\.codec\.skip_value"):
        moved = petrel.message.skip_value  # type: ignore[attr-defined]
    assert moved is petrel.codec.skip_value
    with pytest.raises(AttributeError, match="no_such_name"):
        petrel.message.no_such_name  # type: ignore[attr-defined]  # noqa: B018

"""The documentation site's own pieces: the nav covers every guide, the reference covers
every public package, and the docstring translation (docs/tooling/rest_docstrings.py)
does what mkdocstrings needs.  ``make docs`` builds the site itself (--strict) in CI."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import griffe
import pytest

from .blocks import DOCS, ROOT

#: The public packages the API reference documents, one page each.
PACKAGES = ["client", "blocking", "message", "codec", "types", "spec", "engine", "errors"]
MKDOCS = (ROOT / "mkdocs.yml").read_text()


def test_the_nav_lists_every_guide() -> None:
    listed = set(re.findall(r":\s*([\w/]+\.md)\s*$|^\s*-\s*([\w/]+\.md)\s*$", MKDOCS, re.M))
    pages = {name for pair in listed for name in pair if name}
    assert {path.name for path in DOCS.glob("*.md")} <= pages
    assert {f"reference/{name}.md" for name in PACKAGES} <= pages


@pytest.mark.parametrize("name", PACKAGES)
def test_a_reference_page_per_public_package(name: str) -> None:
    page = (DOCS / "reference" / f"{name}.md").read_text()
    assert f"::: petrel.{name}\n" in page


@pytest.fixture(scope="module")
def rest() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "rest_docstrings", DOCS / "tooling" / "rest_docstrings.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def petrel_tree() -> griffe.Module:
    loaded = griffe.load("petrel", search_paths=[str(ROOT / "src")])
    assert isinstance(loaded, griffe.Module)
    return loaded


def test_roles_become_optional_cross_references(
    rest: ModuleType, petrel_tree: griffe.Module
) -> None:
    codec = petrel_tree["codec"]
    text = rest.to_markdown(
        codec, "See :mod:`petrel.types` and :class:`~petrel.errors.DecodeError`."
    )
    assert '<autoref identifier="petrel.types" optional><code>petrel.types</code></autoref>' in text
    assert (
        '<autoref identifier="petrel.errors.DecodeError" optional><code>DecodeError</code>' in text
    )
    # A short name is resolved from the docstring's scope; a method gets its parentheses.
    message = petrel_tree["message"]
    text = rest.to_markdown(message, ":meth:`Message.encode`")
    assert 'identifier="petrel.message._message.Message.encode"' in text
    assert "<code>Message.encode()</code>" in text
    # A name nothing defines stays as it is written (and renders as plain code).
    assert 'identifier="Nowhere"' in rest.to_markdown(message, ":class:`Nowhere`")


def test_doctests_and_literal_markers_become_markdown(rest: ModuleType) -> None:
    obj = griffe.Module("m")
    text = rest.to_markdown(obj, "For example::\n\n    x = 1\n\n>>> 1 + 1\n2\n\nDone.")
    assert text == "For example:\n\n    x = 1\n\n```pycon\n>>> 1 + 1\n2\n```\n\nDone."

"""The layering rules of DESIGN.md, checked mechanically."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "petrel"
SANS_IO = ("codec", "spec", "engine")
BANNED = {"asyncio", "socket", "ssl", "selectors", "threading", "time"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", SANS_IO)
def test_sans_io_layers_touch_no_io_threads_or_clocks(package: str) -> None:
    offenders = {
        str(path.relative_to(SRC)): sorted(_imports(path) & BANNED)
        for path in (SRC / package).rglob("*.py")
        if _imports(path) & BANNED
    }
    assert offenders == {}


def test_codec_and_spec_use_only_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names) | {"petrel"}
    for package in ("codec", "spec", "engine"):
        for path in (SRC / package).rglob("*.py"):
            third_party = _imports(path) - stdlib
            assert not third_party, f"{path.relative_to(SRC)} imports {sorted(third_party)}"


def test_import_linter_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [lint_imports], capture_output=True, text=True, cwd=SRC.parent.parent, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

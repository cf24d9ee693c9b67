"""The backend switch: PETREL_PURE_PYTHON=1 runs the sources of a compiled build.

Each case runs in a fresh interpreter, since the choice is made once, at import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import petrel
from petrel._accel import COMPILED_MODULES

_PROBE = """
import importlib, json, petrel._accel as a
files = {name: importlib.import_module(name).__file__ for name in a.COMPILED_MODULES}
print(json.dumps({"backend": a.backend(), "files": files}))
"""


def _probe(**env: str) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k != "PETREL_PURE_PYTHON"}
    environ.update(env)
    src = str(Path(petrel.__file__).parents[1])
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [src, environ.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=environ, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _compiled_here() -> bool:
    package = Path(petrel.__file__).parent
    leaf = COMPILED_MODULES[0].split(".")[1:]
    folder = package.joinpath(*leaf[:-1])
    return any((folder / (leaf[-1] + suffix)).exists() for suffix in EXTENSION_SUFFIXES)


def test_pure_python_runs_every_listed_module_from_its_source() -> None:
    result = _probe(PETREL_PURE_PYTHON="1")
    assert result["backend"] == "python"
    files = result["files"]
    assert isinstance(files, dict)
    assert sorted(files) == sorted(COMPILED_MODULES)
    assert all(path.endswith(".py") for path in files.values()), files


def test_the_default_runs_the_compiled_modules_when_the_build_has_them() -> None:
    result = _probe()
    files = result["files"]
    assert isinstance(files, dict)
    compiled = _compiled_here()
    assert result["backend"] == ("mypyc" if compiled else "python")
    suffixes = tuple(EXTENSION_SUFFIXES) if compiled else (".py",)
    assert all(path.endswith(suffixes) for path in files.values()), files


def test_zero_means_the_default() -> None:
    assert _probe(PETREL_PURE_PYTHON="0")["backend"] == _probe()["backend"]


def test_a_build_missing_one_module_runs_the_sources_and_says_which(tmp_path: Path) -> None:
    # A partial build (one extension lost) must not mix: a compiled module calls the
    # others natively, so the whole group runs from source, with one log line.
    package = Path(petrel.__file__).parent
    shutil.copytree(package, tmp_path / "petrel", ignore=shutil.ignore_patterns("__pycache__"))
    for so in package.parent.glob("petrel__mypyc*"):  # the group's shared library
        shutil.copy2(so, tmp_path / so.name)
    name = "petrel.router.table"
    leaf = tmp_path.joinpath(*name.split("."))
    lost = [leaf.with_name(leaf.name + suffix) for suffix in EXTENSION_SUFFIXES]
    for path in lost:
        path.unlink(missing_ok=True)
    environ = {k: v for k, v in os.environ.items() if k != "PETREL_PURE_PYTHON"}
    environ["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=environ, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    assert result["backend"] == "python"
    assert all(path.endswith(".py") for path in result["files"].values())
    if _compiled_here():
        assert f"the compiled build has no {name}" in out.stderr
    else:  # nothing was built: nothing is missing, and nothing is said
        assert "compiled" not in out.stderr

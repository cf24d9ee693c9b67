"""Compile Petrel's hot modules with mypyc: a hatchling build hook, and a script.

The modules are the ones ``src/petrel/_accel.py`` lists, compiled as one group.

As a build hook (``[tool.hatch.build.targets.wheel.hooks.custom]`` in pyproject.toml)
it runs when a wheel is built, and the wheel keeps the ``.py`` sources beside the
extensions (``PETREL_PURE_PYTHON=1`` runs them).  The wheel stays pure Python, and
installs everywhere, when:

- ``PETREL_PURE_PYTHON=1`` is set while building;
- the build is editable (``pip install -e``): a checkout compiles in place instead;
- mypyc or the C compiler fails (no ``gcc``, no Python headers): the hook warns and goes on.

As a script (``python hatch_build.py``, what ``make accel`` runs) it compiles the group
in place, next to the sources of a checkout, so an editable install runs it; it exits 0
with a warning when there is no compiler, since the pure-Python path is complete.
``python hatch_build.py --clean`` removes what it built.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"


def compiled_modules() -> list[str]:
    """The module list, read from ``_accel.py`` without importing Petrel."""
    accel = runpy.run_path(str(SRC / "petrel" / "_accel.py"))
    return list(accel["COMPILED_MODULES"])


def compile_group(lib: Path, work: Path, *, inplace: bool) -> list[Path]:
    """Compile the group; extensions go to ``lib`` (the source tree when ``inplace``)."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    paths = [name.replace(".", "/") + ".py" for name in compiled_modules()]
    cwd = os.getcwd()
    os.chdir(SRC)  # mypyc names modules from paths relative to here: petrel.codec._decode
    try:
        extensions = mypycify(
            [
                "--config-file",
                str(ROOT / "pyproject.toml"),
                "--cache-dir",
                str(work / "mypy-cache"),
                *paths,
            ],
            opt_level="3",
            group_name="petrel",
            target_dir=str(work / "c"),
            multi_file=True,  # one C file per module: compiled on every core below
        )
        dist = Distribution({"name": "petrel", "ext_modules": extensions})
        dist.cmdclass["build_ext"] = _parallel_build_ext()
        command: Any = dist.get_command_obj("build_ext")
        command.build_lib = str(lib)
        command.build_temp = str(work / "temp")
        command.inplace = inplace
        command.ensure_finalized()
        command.run()
        return [Path(p) if Path(p).is_absolute() else SRC / p for p in command.get_outputs()]
    finally:
        os.chdir(cwd)


def _parallel_build_ext() -> type:
    """``build_ext`` compiling an extension's C files at once, one per core.

    The group is one large extension (the per-module shims beside it are tiny), and
    setuptools compiles the sources of one extension one after another; its own
    ``parallel`` option only runs different extensions at once.
    """
    from setuptools.command.build_ext import build_ext

    class ParallelBuildExt(build_ext):  # type: ignore[misc]
        def build_extension(self, ext: Any) -> None:
            compile_sources = self.compiler.compile

            def compile_each(sources: list[str], *args: Any, **kwargs: Any) -> list[str]:
                with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                    done = pool.map(lambda one: compile_sources([one], *args, **kwargs), sources)
                    return [obj for objects in done for obj in objects]

            self.compiler.compile = compile_each
            try:
                super().build_extension(ext)
            finally:
                self.compiler.compile = compile_sources

    return ParallelBuildExt


def clean() -> None:
    """Remove extensions a previous in-place build left in the source tree."""
    for path in [*SRC.glob("*.so"), *SRC.glob("petrel/**/*.so")]:
        path.unlink()


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script: hatchling is only there while building
    BuildHookInterface = object


class MypycHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        if os.environ.get("PETREL_PURE_PYTHON", "") not in ("", "0"):
            self.app.display_info("petrel: PETREL_PURE_PYTHON is set: a pure-Python wheel")
            return
        self._work = work = Path(tempfile.mkdtemp(prefix="petrel-mypyc-"))
        lib = work / "lib"
        try:
            compile_group(lib, work, inplace=False)
        except Exception as exc:  # no compiler, no headers, a mypyc error: stay pure
            self.app.display_warning(f"petrel: no compiled modules ({exc}); a pure-Python wheel")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for path in lib.rglob("*"):
            if path.is_file():
                build_data["force_include"][str(path)] = str(path.relative_to(lib))

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    if "--clean" in sys.argv[1:]:
        clean()
        return 0
    clean()
    with tempfile.TemporaryDirectory(prefix="petrel-mypyc-") as tmp:
        try:
            built = compile_group(SRC, Path(tmp), inplace=True)
        except Exception as exc:  # the pure-Python path is complete: say so and go on
            clean()
            print(f"petrel: not compiled ({exc}); the pure-Python modules run", file=sys.stderr)
            return 0
    print(f"petrel: compiled {len(built)} extensions in place (mypyc)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

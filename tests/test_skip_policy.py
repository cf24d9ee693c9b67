"""The skip policy (tests/helpers/skips.py) in an inner pytest run: in strict mode a skip
fails the run unless the allow-list names it; expected failures are not skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

INNER_TESTS = """
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip("no peer here")

@pytest.mark.parametrize("n", [1, 2])
def test_skips_each(n):
    pytest.skip("no peer for this one either")

@pytest.mark.xfail(strict=True)
def test_known_bug():
    assert False
"""


def inner_run(tmp_path: Path, *options: str, allow: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    (tmp_path / "skips.toml").write_text(allow)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repository's settings
    command = [
        sys.executable, "-m", "pytest", "-p", "tests.helpers.skips", "-p", "no:cacheprovider",
        "--skips-file", str(tmp_path / "skips.toml"), "--rootdir", str(tmp_path),
        "-c", str(tmp_path / "pytest.ini"), *options, str(tmp_path / "test_inner.py"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PETREL_STRICT_SKIPS"}  # CI sets it
    # Only the policy plugin (-p above): the installed ones (asyncio, hypothesis, ...) take
    # most of a run's start-up and play no part in it.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_skips_pass_unless_strict(tmp_path: Path) -> None:
    result = inner_run(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout


def test_strict_fails_on_each_unlisted_skip(tmp_path: Path) -> None:
    result = inner_run(tmp_path, "--strict-skips")
    assert result.returncode == 1, result.stdout
    assert "skips not on the allow-list" in result.stdout
    for test in ("test_skips", "test_skips_each[1]", "test_skips_each[2]"):
        assert f"test_inner.py::{test}: no peer" in result.stdout
    assert "test_known_bug:" not in result.stdout


def test_strict_passes_what_the_allow_list_names(tmp_path: Path) -> None:
    allow = """
[[skip]]
test = "test_inner.py::test_skips"
reason = "no peer here"

[[skip]]
test = "test_inner.py::test_skips_each"
reason = "one entry covers every parameter"
"""
    result = inner_run(tmp_path, "--strict-skips", allow=allow)
    assert result.returncode == 0, result.stdout
    partial = allow.split("\n\n[[skip]]")[0]  # test_skips_each no longer allowed
    result = inner_run(tmp_path, "--strict-skips", allow=partial)
    assert result.returncode == 1, result.stdout
    assert "test_skips_each[1]" in result.stdout


def test_strict_sees_the_skips_of_every_xdist_worker(tmp_path: Path) -> None:
    """Under pytest-xdist (``make test`` runs two workers) the skips happen in the workers
    and the policy judges them in the controller: each one, and a whole file skipped at
    collection too."""
    (tmp_path / "test_skipped_file.py").write_text(
        'import pytest\npytest.skip("no peer for this file", allow_module_level=True)\n'
    )
    xdist = ("-p", "xdist.plugin", "-n", "2", str(tmp_path / "test_skipped_file.py"))
    result = inner_run(tmp_path, "--strict-skips", *xdist)
    assert result.returncode == 1, result.stdout
    assert "2 workers" in result.stdout
    for test in ("test_inner.py::test_skips", "test_skips_each[1]", "test_skips_each[2]"):
        assert f"{test}: no peer" in result.stdout
    assert "test_skipped_file.py: no peer for this file" in result.stdout
    allow = "".join(
        f'[[skip]]\ntest = "{test}"\nreason = "allowed"\n'
        for test in ("test_inner.py::test_skips", "test_inner.py::test_skips_each",
                     "test_skipped_file.py")
    )  # fmt: skip
    result = inner_run(tmp_path, "--strict-skips", *xdist, allow=allow)
    assert result.returncode == 0, result.stdout


def test_an_entry_needs_a_reason(tmp_path: Path) -> None:
    result = inner_run(tmp_path, allow='[[skip]]\ntest = "test_inner.py::test_skips"\n')
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "needs exactly a test and a reason" in result.stderr


def test_the_repository_allow_list_is_valid() -> None:
    from tests.helpers.skips import load_allow_list

    for entry in load_allow_list():
        assert entry.reason.strip(), entry

"""rhea (Node.js's AMQP 1.0 library) for the tests: installed from its lock file in
tests/interop/rhea when missing, and its ``peer.js`` run as a one-shot client."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .locks import exclusive

RHEA = Path(__file__).parents[1] / "interop" / "rhea"
NODE = shutil.which("node")


def install_rhea(*needed: str, node: bool = True) -> None:
    """Skip without Node.js (when ``node``) or npm; run ``npm ci`` unless every path in
    ``needed`` (relative to node_modules, ``rhea`` by default) is there already."""
    if node and NODE is None:
        pytest.skip("Node.js is needed for the rhea tests (apt-get install nodejs npm)")
    npm = shutil.which("npm")
    # `npm ci` empties node_modules first: one process at a time (xdist workers).
    with exclusive("rhea"):
        if all((RHEA / "node_modules" / path).exists() for path in needed or ("rhea",)):
            return
        if npm is None:
            pytest.skip("npm is needed to install rhea (apt-get install npm)")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=RHEA,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}{result.stderr}"


def rhea(*args: str, timeout: float = 30) -> dict[str, object]:
    """Run ``peer.js`` with ``args``; its report is the last line it prints (JSON)."""
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(RHEA / "peer.js"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.stdout, result.stderr
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report

"""The skip policy: where every peer is installed (CI), a skip is a failure unless it is
on the allow-list, ``tests/skips.toml``, with its reason.

A test skipped on a developer's machine for want of a peer (RabbitMQ, the
PostgreSQL server, Proton's C++ headers) says so in the summary, as pytest
always does; with ``--strict-skips`` or ``PETREL_STRICT_SKIPS=1`` (``.ci/run``
sets it) the run fails instead, naming each such test.  An entry in the
allow-list names a test id, or a prefix of one (a file, a class), and the
reason the skip is right; an entry that no longer matches any skip is reported
too, so the list cannot outlive its reasons unnoticed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ALLOW_LIST = Path(__file__).parents[1] / "skips.toml"


@dataclass(frozen=True)
class Allowed:
    test: str
    reason: str


def load_allow_list(path: Path = ALLOW_LIST) -> list[Allowed]:
    """The allowed skips; each entry needs a ``test`` and a non-empty ``reason``."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    entries = []
    for number, entry in enumerate(data.get("skip", []), 1):
        test, reason = entry.get("test"), entry.get("reason")
        if not test or not reason or set(entry) != {"test", "reason"}:
            raise pytest.UsageError(
                f"{path}: skip entry {number} needs exactly a test and a reason: {entry!r}"
            )
        entries.append(Allowed(str(test), str(reason)))
    return entries


@dataclass(eq=False)  # a plugin must be hashable
class SkipPolicy:
    """A pytest plugin: collects skips, and in strict mode fails the run on unlisted ones."""

    strict: bool
    allowed: list[Allowed]
    unlisted: list[tuple[str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def _skipped(self, nodeid: str, longrepr: object) -> None:
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        for entry in self.allowed:
            if _covers(entry.test, nodeid):
                self.used.add(entry.test)
                return
        self.unlisted.append((nodeid, str(reason).removeprefix("Skipped: ")))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self._skipped(report.nodeid, report.longrepr)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self._skipped(report.nodeid, report.longrepr)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.strict:
            return
        if self.unlisted:
            terminalreporter.section("skips not on the allow-list (tests/skips.toml)", red=True)
            for nodeid, reason in self.unlisted:
                terminalreporter.line(f"{nodeid}: {reason}")
        stale = [entry.test for entry in self.allowed if entry.test not in self.used]
        if stale and not self.unlisted and terminalreporter.config.args == ["tests"]:
            terminalreporter.section("allow-list entries that skipped nothing", yellow=True)
            for test in stale:
                terminalreporter.line(test)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.strict and self.unlisted and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _covers(test: str, nodeid: str) -> bool:
    """Whether the allow-list entry ``test`` names ``nodeid``: the id itself, a file or
    folder it lies in, or a class or parametrised test it belongs to."""
    if nodeid == test or nodeid.startswith((test + "::", test + "[")):
        return True
    return test.endswith((".py", "/")) and nodeid.startswith(test)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("petrel", "Petrel's skip policy")
    group.addoption(
        "--strict-skips",
        action="store_true",
        help="fail the run on a skip the allow-list does not name (also PETREL_STRICT_SKIPS=1; "
        ".ci/run sets it)",
    )
    group.addoption(
        "--skips-file",
        default=str(ALLOW_LIST),
        help="the allow-list of skips (default: tests/skips.toml)",
    )


def pytest_configure(config: pytest.Config) -> None:
    strict = config.getoption("strict_skips") or os.environ.get("PETREL_STRICT_SKIPS") == "1"
    allowed = load_allow_list(Path(config.getoption("skips_file")))
    config.pluginmanager.register(SkipPolicy(bool(strict), allowed), "petrel-skip-policy")

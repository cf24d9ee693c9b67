"""A real PostgreSQL server for tests and benchmarks.

``postgres_url`` (session fixture) is ``$PETREL_TEST_POSTGRES_URL`` when set, else
the URL of a throwaway cluster this module starts: Debian's server binaries
(``/usr/lib/postgresql/<version>/bin``, or ``initdb`` on ``PATH``), ``initdb`` into a
temporary directory, ``postgres`` on a free port of 127.0.0.1, stopped and deleted
at the end of the session. As root the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root). Without binaries the tests that need it are
skipped, saying why; CI installs Debian's ``postgresql`` package so they run.

The throwaway cluster runs with ``fsync = off`` unless asked otherwise: tests kill
clients, never the server, so what a commit promises them does not depend on the
server's own ``fsync``. Benchmarks start it with ``fsync=True``.

Tests get isolation from :func:`fresh_schema`: a new schema per test, named in the
URL's ``search_path``, dropped afterwards. It needs no privilege beyond ``CREATE`` on
the database, so it works on a shared server too.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV_URL = "PETREL_TEST_POSTGRES_URL"
#: The role and database of the throwaway cluster.
USER = "petrel"
DATABASE = "petrel_test"

_schemas = itertools.count()


def find_bindir() -> Path | None:
    """The directory of the newest PostgreSQL server binaries, or None."""
    found = sorted(
        (Path(initdb).parent for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda path: _version_key(path.parent.name),
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class TemporaryCluster:
    """``initdb`` + ``pg_ctl start`` in a temporary directory; :meth:`stop` removes it all.

    ``url`` is the superuser's URL to the ``petrel_test`` database (trust
    authentication, 127.0.0.1 only).
    """

    def __init__(self, bindir: Path, *, fsync: bool = False) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="petrel-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._prefix: list[str] = []
        try:
            self._prepare_user()
            self._run(
                "initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"
            )
            self._start(fsync)
            self._create_database()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        # PostgreSQL never runs as root: hand the directory to the postgres user.
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user") from None
        os.chown(self.root, account.pw_uid, account.pw_gid)
        runuser = shutil.which("runuser")
        if runuser is not None:
            self._prefix = [runuser, "-u", "postgres", "--"]
        else:
            self._prefix = [
                "setpriv",
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--init-groups",
                "--",
            ]

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [*self._prefix, str(self.bindir / tool), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{log}".strip()
            )

    def _start(self, fsync: bool) -> None:
        from .servers import free_port

        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            f"-c fsync={'on' if fsync else 'off'}",
            f"-c full_page_writes={'on' if fsync else 'off'}",
            "-c max_connections=200",
            "-c shared_buffers=128MB",
        ]
        for attempt in range(5):
            self.port = free_port()
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    " ".join([*options, f"-p {self.port}"]),
                    "start",
                )
                return
            except RuntimeError:
                if attempt == 4 or "could not bind" not in self.log.read_text(errors="replace"):
                    raise

    def _create_database(self) -> None:
        import psycopg

        url = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(*, fsync: bool = False) -> Iterator[str]:
    """The URL of ``$PETREL_TEST_POSTGRES_URL`` or of a throwaway cluster (see the
    module docstring). Raises ``LookupError`` if there is neither."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    bindir = find_bindir()
    if bindir is None:
        raise LookupError(
            f"no PostgreSQL server binaries (apt-get install postgresql) and no ${ENV_URL}"
        )
    cluster = TemporaryCluster(bindir, fsync=fsync)
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL for this test session (see the module docstring)."""
    pytest.importorskip("psycopg", reason="the postgresql extra (psycopg) is not installed")
    try:
        with postgres_server() as url:
            yield url
    except LookupError as error:
        pytest.skip(str(error))


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL like ``url`` whose ``search_path`` is a new, empty schema, dropped afterwards."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"petrel_t{os.getpid()}_{next(_schemas)}_{time.monotonic_ns() % 10**6}"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {name}")
    try:
        yield make_conninfo(url, options=f"-csearch_path={name}")
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            # A store a failed test left open may hold a lock there: fail, not hang.
            con.execute("SET lock_timeout = '10s'")
            con.execute(f"DROP SCHEMA {name} CASCADE")

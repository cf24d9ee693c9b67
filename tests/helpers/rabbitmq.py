"""A private RabbitMQ node for tests and benchmarks.

:func:`rabbitmq_node` starts Debian's ``rabbitmq-server`` (3.10 here) as a node
of its own: a temporary directory is its ``HOME`` (holding a fresh
``.erlang.cookie``), data and log directories, config and ``enabled_plugins``
file (``rabbitmq_amqp1_0`` and ``rabbitmq_shovel`` by default).  It listens on
127.0.0.1 only, on free ports: AMQP, Erlang distribution, and an ``epmd`` this
module starts itself, so neither a system RabbitMQ nor another test session is
touched.  The node is ready once an AMQP 1.0 connection to it opens; at the
end its process group is stopped (SIGTERM, then SIGKILL) and so is its epmd.

Without the server, :func:`rabbitmq_node` raises :class:`LookupError` and
:func:`rabbitmq_node_or_skip` skips the test, naming the Debian package.

Addresses of RabbitMQ 3.10's AMQP 1.0 plugin (checked against 3.10.8): queue
``NAME`` is ``/queue/NAME`` for senders and receivers alike; attaching declares
it, non-durable unless the terminus is durable, and fails with
``amqp:precondition-failed`` if it exists with the other durability.
``/amq/queue/NAME`` declares nothing: a receiver of a missing queue is refused
(``amqp:not-found``), and a sender's messages to it are accepted and dropped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .servers import free_port

BIN = Path("/usr/lib/rabbitmq/bin")
DEBIAN_PACKAGE = "rabbitmq-server"
PLUGINS = ("rabbitmq_amqp1_0", "rabbitmq_shovel")

#: ``/queue/NAME``: queue NAME, declared on attach (to send to and to receive from).
SEND_PREFIX = RECEIVE_PREFIX = "/queue/"
#: ``/amq/queue/NAME``: queue NAME as it exists, whatever its durability.
EXISTING_QUEUE_PREFIX = "/amq/queue/"

#: Erlang distribution bound to loopback, for the node and for the CLI tools alike.
_LOOPBACK_DIST = "-kernel inet_dist_use_interface {127,0,0,1}"


def installed() -> bool:
    """Whether Debian's ``rabbitmq-server`` (and ``epmd``) are there."""
    return (BIN / "rabbitmq-server").exists() and _epmd() is not None


def _epmd() -> str | None:
    for candidate in ("/usr/bin/epmd", "/usr/lib/erlang/bin/epmd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class RabbitMQNode:
    """A running node (see :func:`rabbitmq_node`)."""

    def __init__(self, home: Path, plugins: Sequence[str], log_level: str = "info") -> None:
        self.home = home
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"petrel-test-{self.port}@localhost"
        self.log_dir = home / "log"
        (home / ".erlang.cookie").write_text(secrets.token_hex(16))
        (home / ".erlang.cookie").chmod(0o400)
        (home / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        (home / "rabbitmq.conf").write_text(
            "log.console = false\n"
            f"log.file.level = {log_level}\n"
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        self.env = dict(
            base,
            HOME=str(home),
            LC_ALL="C.UTF-8",
            RABBITMQ_CONF_ENV_FILE=str(home / "rabbitmq-env.conf"),  # none: not /etc's
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_MNESIA_BASE=str(home / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(home / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(home / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(home / "advanced.config"),
            RABBITMQ_PID_FILE=str(home / "rabbitmq.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_LOOPBACK_DIST,
            RABBITMQ_CTL_ERL_ARGS=_LOOPBACK_DIST,
        )
        self._epmd: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None

    # --- what tests use -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The AMQP URL, with the default user (``guest`` is allowed on loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}"

    @staticmethod
    def queue(name: str) -> str:
        """The AMQP 1.0 address of queue ``name`` (to send to or receive from); attaching
        declares it (non-durable, or durable when the terminus is durable)."""
        return f"{SEND_PREFIX}{name}"

    @staticmethod
    def existing_queue(name: str) -> str:
        """The address of queue ``name`` without declaring it: it must exist (whatever
        its durability).  For senders and receivers alike."""
        return f"{EXISTING_QUEUE_PREFIX}{name}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The ``rabbitmq-server`` process (a shell; the Erlang VM is its child)."""
        assert self._server is not None, "the node is not running"
        return self._server

    def ctl(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``rabbitmqctl`` against this node; its stdout.  Raises ``RuntimeError``
        with its output if it fails."""
        env = dict(self.env)
        # The CLI is a hidden Erlang node too: give it a free distribution port of its
        # own instead of the fixed default range (35672-35682) other sessions may hold.
        cli_port = str(free_port())
        env["RABBITMQ_CTL_DIST_PORT_MIN"] = env["RABBITMQ_CTL_DIST_PORT_MAX"] = cli_port
        result = subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} failed ({result.returncode}):"
                f" {result.stdout.strip()} {result.stderr.strip()}"
            )
        return result.stdout

    def queues(self) -> dict[str, int]:
        """Every queue of the default virtual host and how many messages it holds
        (ready and unacknowledged)."""
        out = self.ctl("list_queues", "--quiet", "--no-table-headers", "name", "messages")
        found: dict[str, int] = {}
        for line in out.splitlines():
            name, _, count = line.rpartition("\t")
            if name:
                found[name] = int(count)
        return found

    def log(self) -> str:
        """The node's log files and console output, for failure messages."""
        parts = [p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log"))]
        console = self.home / "console.log"
        if console.exists():
            parts.append(console.read_text(errors="replace"))
        return "\n".join(parts)

    def restart(self, timeout: float = 180.0) -> None:
        """Stop the node (SIGTERM, as an operator would) and start it again on the same
        data directory and ports; returns once AMQP 1.0 works again."""
        self._stop_server()
        self._start_server(timeout)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        epmd = _epmd()
        assert epmd is not None
        # Our own epmd, started before the node so that the node does not start (and
        # leave behind) a daemonised one; we know its pid and stop it at the end.
        self._epmd = subprocess.Popen(
            [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(self.epmd_port, self._epmd, 30.0)
        self._start_server(timeout)

    def _start_server(self, timeout: float) -> None:
        with open(self.home / "console.log", "ab") as console:
            self._server = subprocess.Popen(
                [str(BIN / "rabbitmq-server")],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self._stop_server()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Poll until an AMQP 1.0 connection (SASL PLAIN, open, close) succeeds."""
        import petrel.blocking

        server = self._server
        assert server is not None
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited with {server.returncode}\n{self.log()[-4000:]}"
                )
            if _port_open(self.port):
                try:
                    with petrel.blocking.connect(self.url, reconnect=False, timeout=10.0):
                        return
                except (OSError, petrel.ClientError) as exc:
                    last = exc  # the listener opens before the AMQP 1.0 plugin is up
            time.sleep(0.25)
        raise TimeoutError(
            f"RabbitMQ did not accept AMQP 1.0 within {timeout} s (last: {last!r})\n"
            f"{self.log()[-4000:]}"
        )

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            _stop_group(server, 60.0)

    def stop(self) -> None:
        try:
            self._stop_server()
        finally:
            epmd, self._epmd = self._epmd, None
            if epmd is not None:
                _stop_group(epmd, 10.0)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _port_open(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.05)


def _stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group led by ``proc``, SIGKILL it after ``timeout`` s, and then
    whatever the Erlang VM started in sessions of their own (``erl_child_setup``,
    ``inet_gethost``, port programs), by pid."""
    if proc.returncode is None:
        descendants = _descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        # Wait for the leader without reaping it: while it is a zombie its pid (the group's
        # id) cannot be reused, so the SIGKILL below reaches only what is left of the group.
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid, started in descendants.items():
            if _start_time(pid) == started:  # the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    proc.wait()


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _descendants(root: int) -> dict[int, int]:
    """The processes below ``root`` (not ``root`` itself), with their start times."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        started = _start_time(pid)
        if started is not None:
            found[pid] = started
            todo.extend(children.get(pid, []))
    return found


@contextlib.contextmanager
def rabbitmq_node(
    plugins: Sequence[str] = PLUGINS, *, timeout: float = 180.0, log_level: str = "info"
) -> Iterator[RabbitMQNode]:
    """Start a private RabbitMQ node (see the module docstring); yields it once AMQP 1.0
    works, and stops it and its epmd afterwards.  Raises ``LookupError`` when
    ``rabbitmq-server`` is not installed.  ``log_level`` is the node's file log level."""
    if not installed():
        raise LookupError(
            f"RabbitMQ is not installed (apt-get install {DEBIAN_PACKAGE}:"
            f" {BIN / 'rabbitmq-server'} and epmd)"
        )
    with tempfile.TemporaryDirectory(prefix="petrel-rabbitmq-") as home:
        node = RabbitMQNode(Path(home), plugins, log_level)
        try:
            node.start(timeout)
            yield node
        finally:
            node.stop()


@contextlib.contextmanager
def rabbitmq_node_or_skip(
    plugins: Sequence[str] = PLUGINS, *, timeout: float = 180.0
) -> Iterator[RabbitMQNode]:
    """:func:`rabbitmq_node` for tests: skips the test when RabbitMQ is not installed."""
    if not installed():
        import pytest

        pytest.skip(f"RabbitMQ is not installed (Debian package {DEBIAN_PACKAGE})")
    with rabbitmq_node(plugins, timeout=timeout) as node:
        yield node

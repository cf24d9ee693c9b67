"""Starting real peers for tests: free ports, READY-line subprocesses, the Petrel broker."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_ready_process(args: list[str], *, timeout: float = 20.0) -> Iterator[subprocess.Popen[str]]:
    """Start ``args``, wait for a line ``READY`` on its stdout, stop it afterwards."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            if line.strip() == "READY":
                break
            if not line and proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"{args[1:]} exited with {proc.returncode}: {err}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args} did not become ready in {timeout} s")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def proton_broker(
    *, tls: tuple[str, str] | None = None, idle: float | None = None, port: int | None = None
) -> Iterator[int]:
    """Run the Proton-based test broker in a subprocess; yields its port."""
    port = port or free_port()
    args = [sys.executable, str(HELPERS / "proton_broker.py"), str(port)]
    if tls:
        args += ["--tls", tls[0], tls[1]]
    if idle:
        args += ["--idle", str(idle)]
    with run_ready_process(args):
        yield port


@dataclass
class BrokerProcess:
    """A ``petrel broker`` running in a subprocess (see :func:`run_broker`)."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """Everything the broker wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def rss_kb(self) -> int:
        """The broker's resident set size (VmRSS), in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0
) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout} s") from None
            time.sleep(0.02)


def _asks_for_http(config: str | None, args: Sequence[str]) -> bool:
    """Whether the test says what ``petrel broker``'s HTTP listener is (``--http``,
    ``--no-http``, or ``role = "http"`` in the config)."""
    named = any(arg.startswith(("--http", "--no-http")) for arg in args)
    return named or (config is not None and 'role = "http"' in config)


@contextlib.contextmanager
def run_broker(
    config: str | None = None,
    *,
    port: int | None = None,
    store: str = "memory",
    data_dir: Path | str | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    default_http: bool = False,
) -> Iterator[BrokerProcess]:
    """Run ``petrel broker`` on a free port; yields a :class:`BrokerProcess` once it accepts
    connections, and stops it (SIGTERM, then SIGKILL) afterwards.

    ``config`` is TOML text.  Without a ``[[listeners]]`` table the broker
    listens on ``amqp://127.0.0.1:{port}`` (``--listen``); with one, the
    config's listeners must include ``port``.  ``store`` is ``memory`` or
    ``sqlite``; ``data_dir`` defaults to a fresh temporary directory (kept only
    while the broker runs, unless given).  The broker's log (stderr) goes to a
    file: :meth:`BrokerProcess.log`.  It serves no HTTP unless the test names an HTTP
    listener or asks for the default one (``default_http``).
    """
    port = port or free_port()
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="petrel-broker-"))
        data = Path(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        command = [
            str(Path(sys.executable).with_name("petrel")),
            "broker",
            "--store",
            store,
            "--data-dir",
            str(data),
        ]
        if config is not None:
            config_file = data / f"broker-{port}.toml"
            config_file.write_text(config)
            command += ["--config", str(config_file)]
        if config is None or "[[listeners]]" not in config:
            command += ["--listen", f"amqp://127.0.0.1:{port}"]
        command += list(args)
        if not default_http and not _asks_for_http(config, args):
            command.append("--no-http")  # the suite's brokers need no HTTP (nor its import)
        log_path = data / f"broker-{port}.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=dict(os.environ, **(env or {})),
            )
        broker = BrokerProcess(proc, port, data, log_path)
        try:
            try:
                wait_for_port(port, proc, timeout)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"petrel broker did not start: {exc}\n{broker.log()}") from None
            yield broker
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM ``proc``, SIGKILL it if it is still there after ``timeout`` s; its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=timeout)

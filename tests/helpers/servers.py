"""Starting real peers for tests: free ports, subprocesses that print READY, TLS certificates."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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

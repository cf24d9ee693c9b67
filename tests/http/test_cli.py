"""``petrel broker``'s HTTP listener from the command line: the default on 127.0.0.1:8672
(a busy port there is a warning), ``--http`` (a busy port is a startup error),
``--no-http``, and configurations that are refused."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import petrel
from petrel.broker import Broker
from petrel.server.config import BrokerSettings
from petrel.server.http import DEFAULT_HTTP_URL, apply_http_options, service
from tests.helpers.routers import wait_until
from tests.helpers.servers import free_port, run_broker, wait_for_port
from tests.http.conftest import scrape

PETREL = str(Path(sys.executable).with_name("petrel"))
DEFAULT_PORT = int(DEFAULT_HTTP_URL.rsplit(":", 1)[1])


@contextlib.contextmanager
def holding(port: int) -> Iterator[None]:
    """Keep ``port`` on 127.0.0.1 busy (if this process cannot bind it, something else
    holds it: busy all the same)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield


def broker_exits(
    *args: str, config: str | None = None, tmp: Path
) -> subprocess.CompletedProcess[str]:
    command = [PETREL, "broker", "--store", "memory", "--data-dir", str(tmp), *args]
    if config is not None:
        (tmp / "b.toml").write_text(config)
        command += ["--config", str(tmp / "b.toml")]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_petrel_broker_serves_http_by_default() -> None:
    """On the default port, or (other Petrels on this machine hold it) with the warning."""
    served = f"HTTP on {DEFAULT_HTTP_URL}"
    warned = f"no HTTP (metrics, WebSockets): cannot listen on {DEFAULT_HTTP_URL}"
    with run_broker(default_http=True) as broker:
        # The AMQP port opens first; the HTTP listener's line may follow it.
        wait_until(
            lambda: served in broker.log() or warned in broker.log(),
            what="the HTTP listener's line",
            status=broker.log,
        )


async def test_the_default_listener_on_a_busy_port_is_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    monkeypatch.setattr(service, "DEFAULT_HTTP_URL", f"http://127.0.0.1:{port}")
    settings = {"store": "memory", "listeners": [{"url": "amqp://127.0.0.1:0"}]}
    with holding(port):
        broker = Broker(
            BrokerSettings.model_validate({**settings, "http": {"default_listener": True}})
        )
        await broker.start()
        try:
            assert [s.role for s, _ in broker.listeners.listeners.values()] == ["normal"]
            async with await petrel.connect(
                f"amqp://127.0.0.1:{broker.bound[0][1]}", reconnect=False
            ):
                pass
        finally:
            await broker.stop()
    assert f"no HTTP (metrics, WebSockets): cannot listen on http://127.0.0.1:{port}" in caplog.text
    # Free, it is served; and a program's settings without default_listener serve none.
    for default_listener, roles in ((True, ["normal", "http"]), (False, ["normal"])):
        broker = Broker(
            BrokerSettings.model_validate(
                {**settings, "http": {"default_listener": default_listener}}
            )
        )
        await broker.start()
        try:
            assert [s.role for s, _ in broker.listeners.listeners.values()] == roles
            if default_listener:
                samples = await scrape(port)
                assert any(name == "petrel_server_info" for name, _ in samples)
        finally:
            await broker.stop()


def test_an_explicit_http_listener_on_a_busy_port_stops_the_start(tmp_path: Path) -> None:
    port = free_port()
    with holding(port):
        result = broker_exits(
            "--listen",
            f"amqp://127.0.0.1:{free_port()}",
            "--http",
            f"http://127.0.0.1:{port}",
            tmp=tmp_path,
        )
    assert result.returncode == 3, result.stderr
    assert f"petrel broker: cannot listen on http://127.0.0.1:{port}" in result.stderr


def test_http_flag_serves_there_and_no_http_serves_none() -> None:
    port = free_port()
    with run_broker(args=["--http", f"http://127.0.0.1:{port}"]) as broker:
        wait_for_port(port, broker.proc)  # bound after the AMQP listener run_broker waits for
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert b"petrel_server_info" in response.read()
        assert f"HTTP on http://127.0.0.1:{port}" in broker.log()
    with run_broker(args=["--no-http"]) as broker:
        log = broker.log()
    assert "HTTP on" not in log
    assert "no HTTP" not in log


def test_bad_http_configurations_are_refused(tmp_path: Path) -> None:
    cases = {
        'role = "http" goes with an http:// or https:// URL': (
            '[[listeners]]\nurl = "amqp://127.0.0.1:1"\nrole = "http"\n'
        ),
        "a server has one HTTP listener, not 2": (
            '[[listeners]]\nurl = "http://127.0.0.1:1"\nrole = "http"\n'
            '[[listeners]]\nurl = "http://127.0.0.1:2"\nrole = "http"\n'
        ),
        "is https:// but has no [tls] settings": (
            '[[listeners]]\nurl = "https://127.0.0.1:1"\nrole = "http"\n'
        ),
        "an HTTP listener URL is http[s]://host:port, nothing more": (
            '[[listeners]]\nurl = "http://127.0.0.1:1/metrics"\nrole = "http"\n'
        ),
    }
    for expected, config in cases.items():
        result = broker_exits(config=config, tmp=tmp_path)
        assert result.returncode == 2, (expected, result.stderr)
        assert expected in result.stderr, result.stderr


def test_the_options_keep_the_files_other_listeners() -> None:
    settings = BrokerSettings.model_validate(
        {
            "listeners": [
                {"url": "amqp://127.0.0.1:5000"},
                {"url": "http://127.0.0.1:5001", "role": "http"},
            ]
        }
    )
    kept = apply_http_options(settings, url=None, enabled=True)
    assert [listener.url for listener in kept.listeners] == [
        "amqp://127.0.0.1:5000",
        "http://127.0.0.1:5001",
    ]
    assert kept.http.default_listener
    moved = apply_http_options(settings, url="http://127.0.0.1:5002", enabled=True)
    assert [listener.url for listener in moved.listeners][1:] == ["http://127.0.0.1:5002"]
    none = apply_http_options(settings, url=None, enabled=False)
    assert [listener.role for listener in none.listeners] == ["normal"]
    assert not none.http.default_listener
    # A program's settings name no default HTTP listener.
    assert not BrokerSettings().http.default_listener

"""The pieces: reading one application property off the wire, the setting, and Petrel
without OpenTelemetry installed at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from petrel import Message, tracing
from petrel.errors import DecodeError
from petrel.message import MessageView
from petrel.server.config import BrokerSettings, ConfigError, read_settings
from petrel.types import Symbol

TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_one_application_property_is_read_without_decoding_the_map() -> None:
    message = Message(
        "body",
        application_properties={"a": 1, "note": "traceparent in a value", "traceparent": TP},
    )
    view = MessageView(message.encode())
    assert view.application_property("traceparent") == TP
    assert view.application_property("a") == 1
    assert view.application_property("absent") is None
    # "tracestate" is nowhere in the bytes; "note" is, as a key: the walk finds it.
    assert view.application_property("tracestate") is None
    assert view.application_property("note") == "traceparent in a value"
    assert view._app is not None
    assert type(view._app) is object  # still the "not decoded" marker


def test_a_key_inside_a_value_only_is_not_taken_for_the_key() -> None:
    view = MessageView(Message("b", application_properties={"x": "traceparent"}).encode())
    assert view.application_property("traceparent") is None


def test_long_maps_and_long_keys_are_read_too() -> None:
    big = {f"key{i}": "v" * 40 for i in range(20)}  # over 255 bytes: a map32
    key = "k" * 300  # a str32 key
    view = MessageView(Message("b", application_properties={**big, key: 7, "t": TP}).encode())
    assert view.application_property("t") == TP
    assert view.application_property(key) == 7
    assert view.application_property("key19") == "v" * 40


def test_no_application_properties() -> None:
    assert MessageView(Message("b").encode()).application_property("traceparent") is None


def test_a_decoded_map_is_used_as_it_is() -> None:
    view = MessageView(Message("b", application_properties={"traceparent": TP}).encode())
    assert view.application_properties == {"traceparent": TP}
    assert view.application_property("traceparent") == TP


def test_a_malformed_section_raises_the_decode_error() -> None:
    good = Message("b", application_properties={"traceparent": TP}).encode()
    # Claim more map items than there are: looking for a key that is not there (but whose
    # bytes are) the walk runs off the end, then the whole section is decoded, which
    # reports the problem.
    at = good.index(b"\x00\x53\x74") + 3
    assert good[at] == 0xC1
    bad = good[: at + 2] + bytes([good[at + 2] + 2]) + good[at + 3 :]
    view = MessageView(bad)
    with pytest.raises(DecodeError, match="map8 ends before"):
        view.application_property("trace")


def test_context_of_reads_what_the_client_wrote() -> None:
    context = tracing.context_of({"traceparent": TP, "tracestate": "vendor=1"})
    assert context is not None
    from opentelemetry import trace

    span_context = trace.get_current_span(context).get_span_context()
    assert f"{span_context.trace_id:032x}" == TP.split("-")[1]
    assert span_context.is_remote
    assert span_context.trace_state.get("vendor") == "1"
    assert tracing.context_of({"traceparent": "nonsense"}) is None
    assert tracing.context_of({"traceparent": TP.upper()}) is None  # lowercase hex only
    assert tracing.context_of({"traceparent": TP + "-more"}) is None  # version 00: 4 fields
    assert tracing.context_of({"traceparent": "01" + TP[2:] + "-more"}) is not None  # later
    assert tracing.context_of({"traceparent": "ff" + TP[2:]}) is None
    assert tracing.context_of({"traceparent": "00-" + "0" * 32 + TP[35:]}) is None
    assert tracing.context_of({"traceparent": Symbol(TP)}) is None  # not a string
    assert tracing.context_of(None) is None


def test_the_setting_is_off_by_default_and_read_from_toml(tmp_path: object) -> None:
    assert BrokerSettings().tracing.enabled is False
    from pathlib import Path

    path = Path(str(tmp_path)) / "broker.toml"
    path.write_text("[tracing]\nenabled = true\n")
    assert read_settings(BrokerSettings, path).tracing.enabled is True
    path.write_text("[tracing]\nenable = true\n")
    with pytest.raises(ConfigError, match=r"tracing.enable: unknown setting"):
        read_settings(BrokerSettings, path)


# Run in a fresh interpreter where ``import opentelemetry`` fails, as where it is not
# installed.
WITHOUT_OTEL = textwrap.dedent(
    """
    import asyncio, sys
    sys.modules["opentelemetry"] = None  # any import of it raises ImportError
    import petrel
    from petrel import tracing
    from petrel.broker import Broker
    from petrel.server.config import BrokerSettings, ConfigError, read_settings

    assert tracing.AVAILABLE is False and tracing.client is None
    try:
        read_settings(BrokerSettings, None, tracing={"enabled": True})
    except ConfigError as exc:
        print("refused:", exc)

    async def main() -> None:
        broker = Broker(BrokerSettings(store="memory", listeners=[{"url": sys.argv[1]}]))
        await broker.start()
        try:
            message = petrel.Message("plain", application_properties={"n": 1})
            async with await petrel.connect(sys.argv[1]) as conn:
                await (await conn.open_sender("q")).send(message)
                delivery = await (await conn.open_receiver("q")).receive(timeout=10)
                await delivery.accept()
            print("identical:", delivery.payload == message.encode())
        finally:
            await broker.stop(timeout=1.0)

    asyncio.run(main())
    """
)


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a Python process of its own (for what is set once per process)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_without_opentelemetry_nothing_is_added_and_the_setting_is_refused() -> None:
    from tests.helpers.servers import free_port

    url = f"amqp://127.0.0.1:{free_port()}"
    result = _python(WITHOUT_OTEL, url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "refused: command line: tracing.enabled: needs OpenTelemetry's API, which is not "
        "installed (pip install 'petrel[otel]')",
        "identical: True",
    ]


def test_the_client_records_only_with_a_tracer_provider(tracer_provider: object) -> None:
    # With a provider (the fixture's), sends and receives are traced; without one
    # (the global default, a proxy to nothing) every span would be a no-op, and the
    # client sends without building one.
    assert tracing.client is not None
    assert tracing.client.recording()
    tracing.use_tracer_provider(None)
    assert not tracing.client.recording()


class _CountingEnviron(dict[str, str]):
    """``os.environ`` stand-in that counts lookups."""

    lookups = 0

    def __contains__(self, key: object) -> bool:
        type(self).lookups += 1
        return super().__contains__(key)

    def __getitem__(self, key: str) -> str:
        type(self).lookups += 1
        return super().__getitem__(key)


def test_without_a_provider_the_check_reads_no_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # OpenTelemetry's get_tracer_provider() looks the environment up on every call
    # until a provider is set: a tenth of a send's cost when asked per message.
    import os

    tracing.use_tracer_provider(None)
    monkeypatch.setattr(os, "environ", _CountingEnviron(os.environ))
    assert tracing.client is not None
    for _ in range(100):
        assert not tracing.client.recording()
    assert _CountingEnviron.lookups == 0


GLOBAL_PROVIDER = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from petrel import tracing

print(tracing.client.recording())
if sys.argv[1] == "code":
    trace.set_tracer_provider(TracerProvider())
print(tracing.client.recording())
"""


@pytest.mark.parametrize("how", ["code", "environment"])
def test_a_global_provider_is_seen_however_it_is_set(how: str) -> None:
    """A provider set globally after import, in code or named by the environment
    (OpenTelemetry loads it on first use), makes the client trace: in a process of its
    own, as a global provider is set once per process."""
    import os

    env = dict(os.environ)
    env.pop("OTEL_PYTHON_TRACER_PROVIDER", None)
    if how == "environment":
        env["OTEL_PYTHON_TRACER_PROVIDER"] = "sdk_tracer_provider"
    result = _python(GLOBAL_PROVIDER, how, env=env)
    assert result.returncode == 0, result.stderr
    expected = ["False", "True"] if how == "code" else ["True", "True"]
    assert result.stdout.splitlines() == expected

"""Record the fuzz corpus: real peers talking to Petrel's broker, both directions, as raw bytes.

    python bench/fuzz_record.py [--out tests/fuzz/corpus]

Starts ``petrel broker`` (memory store, one PLAIN user) behind a small recording TCP
proxy and runs real clients through the proxy: Qpid Proton's Python client (SASL
PLAIN and ANONYMOUS, selectors, a drain, a reject and a release), Proton's C
examples (no SASL) and C++ examples (SASL), rhea (Node.js) and Petrel's own client
(multi-frame messages through a 512-byte max-frame-size).  Every proxied
connection is saved as two files in ``--out``:

- ``<peer>-<n>.c2s``: what the client sent (fed to a server-role engine), and
- ``<peer>-<n>.s2c``: what the broker sent (fed to a client-role engine).

Peers that are not installed are skipped with a note on stderr.  The corpus is
checked in; run this again after a protocol change to refresh it.  Sizes are kept
small (tens of messages per peer) so the whole corpus stays a few hundred KiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the repository's tests (their helpers start the peers)

from tests.helpers.servers import run_broker  # noqa: E402

CONFIG = """
[[users]]
name = "alice"
password = "wonderland"

[[queues]]
name = "fuzz"
"""


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 that keeps every byte of every connection, per direction."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        #: (client-to-server bytes, server-to-client bytes) of each finished connection.
        self.recorded: list[tuple[bytearray, bytearray]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._live = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every proxied connection has ended (both sides closed)."""
        deadline = self._loop.time() + timeout
        while self._live and self._loop.time() < deadline:
            threading.Event().wait(0.02)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._live += 1
        c2s, s2c = bytearray(), bytearray()
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(_pipe(client_r, server_w, c2s), _pipe(server_r, client_w, s2c))
            self.recorded.append((c2s, s2c))
        finally:
            self._live -= 1


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray) -> None:
    try:
        while data := await reader.read(65536):
            log += data
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


# --- the peers --------------------------------------------------------------------------------


def proton_python(url: str) -> None:
    from proton import Message
    from proton.reactor import Selector
    from tests.helpers import proton_client as pc

    plain = pc.connect(url, user="alice", password="wonderland", allowed_mechs="PLAIN")
    try:
        tx = pc.sender(plain, "fuzz")
        for i in range(8):
            message = Message(
                body={"i": i, "text": "hello" * (i + 1)},
                properties={"colour": "red" if i % 2 else "blue", "n": i},
                subject=f"s{i}",
                durable=bool(i % 3),
                priority=i % 10,
            )
            message.ttl = 600.0
            tx.send(message)
        tx.close()
    finally:
        plain.close()
    anon = pc.connect(url, allowed_mechs="ANONYMOUS")
    try:
        rx = pc.receiver(anon, "fuzz", credit=2, options=Selector("colour = 'red'"))
        got = [pc.fetch(anon, rx) for _ in range(2)]
        pc.settle(got[0][1])
        pc.settle(got[1][1], "modify", failed=True)
        everything = pc.receiver(anon, "fuzz")
        drained = pc.drain(anon, everything)
        for n, (_, delivery) in enumerate(drained):
            pc.settle(delivery, ("reject", "release")[n] if n < 2 else "accept")
        pc.sync(anon)
    finally:
        anon.close()


def proton_native(url: str, port: int) -> None:
    from tests.helpers.proton_native import PACKAGES, build_examples

    built = build_examples()
    if built is None:
        print(f"skipping Proton's C/C++ examples: apt-get install {PACKAGES}", file=sys.stderr)
        return
    run = [
        [built["send"], "127.0.0.1", str(port), "fuzz.c", "10"],
        [built["receive"], "127.0.0.1", str(port), "fuzz.c", "10"],
        [built["simple_send"], "-a", f"{url}/fuzz.cpp", "-m", "10"],
        [built["simple_recv"], "-a", f"{url}/fuzz.cpp", "-m", "10"],
    ]
    for args in run:
        subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=60)


def rhea(url: str) -> None:
    node = shutil.which("node")
    peer = ROOT / "tests" / "interop" / "rhea"
    if node is None or not (peer / "node_modules" / "rhea").is_dir():
        print("skipping rhea: Node.js and tests/interop/rhea/node_modules needed", file=sys.stderr)
        return
    for args in (["send", url, "fuzz.rhea", "10"], ["receive", url, "fuzz.rhea", "5", "i >= 5"]):
        subprocess.run(
            [node, str(peer / "peer.js"), *args], check=True, capture_output=True, timeout=60
        )


def petrel_client(url: str) -> None:
    import petrel

    async def main() -> None:
        async with await petrel.connect(url, reconnect=False, max_frame_size=512) as conn:
            sender = await conn.open_sender("fuzz.big")
            for size in (1500, 4000):
                await sender.send(petrel.Message(b"\x00\x01\xfe\xff" * (size // 4), durable=True))
            receiver = await conn.open_receiver("fuzz.big")
            for _ in range(2):
                delivery = await receiver.receive(timeout=10)
                await delivery.accept()

    asyncio.run(main())


# --- recording --------------------------------------------------------------------------------


@contextlib.contextmanager
def proxied_broker() -> Iterator[tuple[RecordingProxy, int]]:
    with run_broker(CONFIG) as broker, RecordingProxy(broker.port) as proxy:
        yield proxy, broker.port


def record(out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    peers: dict[str, Callable[[str, int], None]] = {
        "proton-python": lambda url, port: proton_python(url),
        "proton-native": proton_native,
        "rhea": lambda url, port: rhea(url),
        "petrel": lambda url, port: petrel_client(url),
    }
    for peer, run in peers.items():
        with proxied_broker() as (proxy, _):
            url = f"amqp://127.0.0.1:{proxy.port}"
            run(url, proxy.port)
            proxy.wait_idle()
            for n, (c2s, s2c) in enumerate(proxy.recorded):
                for suffix, data in (("c2s", c2s), ("s2c", s2c)):
                    if data:
                        path = out / f"{peer}-{n}.{suffix}"
                        path.write_bytes(bytes(data))
                        sizes[path.name] = len(data)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fuzz" / "corpus")
    args = parser.parse_args()
    for old in args.out.glob("*.c2s"):
        old.unlink()
    for old in args.out.glob("*.s2c"):
        old.unlink()
    sizes = record(args.out)
    print(json.dumps({"files": len(sizes), "bytes": sum(sizes.values()), "sizes": sizes}))


if __name__ == "__main__":
    main()

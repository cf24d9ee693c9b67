"""Petrel's broker against the brokers a user would pick instead, with the same clients.

    python bench/compare.py [--scale 1.0] [--brokers petrel,petrel-pure,proton-c,rabbitmq]
                            [--case NAME] [--rounds N] [--markdown FILE]

Starts, one after the other on loopback, each broker from Debian's packages:

- ``petrel``: ``petrel broker --store sqlite`` (durable messages go to disk), with
  the compiled accelerator when it is built.
- ``petrel-pure``: the same with ``PETREL_PURE_PYTHON=1`` (the pure-Python path).
- ``proton-c``: Apache Qpid Proton's C ``broker.c`` example
  (``libqpid-proton11-dev-examples``), its credit ``WINDOW`` raised from 5 to
  1000, built as ``bench/broker.py`` builds it.  It has no store (no durable
  case) and delivers pre-settled to consumers.
- ``rabbitmq``: ``rabbitmq-server`` (installed with apt-get if missing) with
  the ``rabbitmq_amqp1_0`` plugin, its own node name, ports, epmd and data
  directory; SASL PLAIN guest/guest; addresses ``/queue/NAME``.

and drives each with ``petrel bench`` (Petrel's client, and ``--client proton``)
over the cases below, one pair of clients and 4 senders + 4 receivers, then
with Proton's native load generators: the C ``send``/``receive`` examples
(no SASL, so not against RabbitMQ) and the C++ ``simple_send``/``simple_recv``
examples (``libqpid-proton-cpp12-dev``; ``simple_recv`` with its per-message
print and its single-sender duplicate check removed), one pair and 4 pairs at
once (each pair on its own address; 100,000 messages in all), their own
small map body, unsettled.  With ``--rounds N`` every broker runs N times,
interleaved, and the table keeps the median of each row.  Prints one JSON line
per run and then one table:
broker, case, msgs/s, p99 latency, broker CPU seconds and Petrel's ratio to
the peer.  It stops every server it started.

Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # the repository: the tests' RabbitMQ helper

from tests.helpers import rabbitmq  # noqa: E402

from broker import BUILD, build_c_examples, wait_port  # noqa: E402

PETREL = Path(sys.executable).parent / "petrel"
CPP_EXAMPLES = Path("/usr/share/proton/examples/cpp")

#: (name, petrel bench arguments, base count) -- counts are multiplied by --scale.
CASES: list[tuple[str, list[str], int]] = [
    ("100 B presettled", ["--size", "100", "--settle", "presettled"], 50_000),
    ("100 B unsettled", ["--size", "100", "--settle", "unsettled"], 50_000),
    ("100 B durable", ["--size", "100", "--settle", "unsettled", "--durable"], 20_000),
    ("10 KiB unsettled", ["--size", "10240", "--settle", "unsettled"], 10_000),
    ("1 MiB unsettled", ["--size", "1048576", "--settle", "unsettled"], 300),
]
LAYOUTS = [("1x1", 1), ("4x4", 4)]


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    address_prefix: str = ""
    durable: bool = True

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the broker process and all its descendants."""
        return sum(_cpu(pid) for pid in _tree(self.proc.pid))


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    if proc.poll() is None:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()


# --- the brokers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def petrel_broker(pure: bool = False) -> Iterator[Server]:
    """Petrel's broker; ``pure``: with ``PETREL_PURE_PYTHON=1`` (no compiled accelerator)."""
    port = free_port()
    env = dict(os.environ)
    env.pop("PETREL_PURE_PYTHON", None)
    if pure:
        env["PETREL_PURE_PYTHON"] = "1"
    with tempfile.TemporaryDirectory(prefix="petrel-compare-") as data:
        proc = subprocess.Popen(
            [str(PETREL), "broker", "--listen", f"amqp://127.0.0.1:{port}", "--store", "sqlite",
             "--data-dir", data, "--log-level", "warning", "--no-http"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )  # fmt: skip
        try:
            wait_port(port)
            yield Server("petrel-pure" if pure else "petrel", f"amqp://127.0.0.1:{port}", proc)
        finally:
            _stop(proc)


def petrel_pure_broker() -> contextlib.AbstractContextManager[Server]:
    return petrel_broker(pure=True)


@contextlib.contextmanager
def proton_c_broker() -> Iterator[Server]:
    build_c_examples()
    port = free_port()
    proc = subprocess.Popen(
        [str(BUILD / "broker"), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield Server("proton-c", f"amqp://127.0.0.1:{port}", proc, durable=False)
    finally:
        _stop(proc)


def ensure_rabbitmq() -> None:
    if rabbitmq.installed():
        return
    print("installing rabbitmq-server with apt-get", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", rabbitmq.DEBIAN_PACKAGE], check=True, env=env)


@contextlib.contextmanager
def rabbitmq_broker() -> Iterator[Server]:
    """A private node (tests/helpers/rabbitmq.py: own HOME, cookie, ports, epmd, data)."""
    ensure_rabbitmq()
    with rabbitmq.rabbitmq_node(("rabbitmq_amqp1_0",), log_level="warning") as node:
        yield Server("rabbitmq", node.url, node.process, address_prefix=rabbitmq.SEND_PREFIX)


BROKERS: dict[str, Callable[[], contextlib.AbstractContextManager[Server]]] = {
    "petrel": petrel_broker,
    "petrel-pure": petrel_pure_broker,
    "proton-c": proton_c_broker,
    "rabbitmq": rabbitmq_broker,
}


# --- the clients ----------------------------------------------------------------------------------


def build_cpp_examples() -> Path:
    """simple_send and simple_recv (print and single-sender duplicate check removed)."""
    BUILD.mkdir(exist_ok=True)
    found = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libqpid-proton-cpp"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Debian 12's libqpid-proton-cpp.pc requires libqpid-proton-core.pc and
    # libqpid-proton-proactor.pc, which no package ships: link by name then.
    flags = found.stdout.split() if found.returncode == 0 else ["-lqpid-proton-cpp"]
    for name in ("simple_send", "simple_recv"):
        binary = BUILD / name
        if binary.exists():
            continue
        source = (CPP_EXAMPLES / f"{name}.cpp").read_text()
        if name == "simple_recv":
            source = source.replace("std::cout << msg.body() << std::endl;", "")
            source = source.replace(
                "proton::coerce<int>(msg.id()) < received", "false /* several senders */"
            )
        src = BUILD / f"{name}.cpp"
        src.write_text(source)
        subprocess.run(
            ["g++", "-O2", "-I", str(CPP_EXAMPLES), "-o", str(binary), str(src), *flags],
            check=True,
        )
    return BUILD


def run_bench(
    server: Server, client: str, args: list[str], count: int, layout: int
) -> dict[str, Any]:
    address = f"{server.address_prefix}compare-{time.monotonic_ns()}"
    command = [
        str(PETREL), "bench", "--json", "--url", server.url, "--address", address,
        "--client", client, "--count", str(count),
        "--senders", str(layout), "--receivers", str(layout), *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise RuntimeError(lines[-1])
    data: dict[str, Any] = json.loads(result.stdout)
    if data.get("errors"):
        # A link failed mid-run: the rate would be a fiction.
        raise RuntimeError(f"{data['errors'][0]} ({data['missing']} of {count} not received)")
    if not data["exactly_once"]:
        data["note"] = (
            f"missing {data['missing']}, duplicates {data['duplicates']},"
            f" unexpected {data['unexpected']}"
        )
    return data


def run_native(server: Server, kind: str, count: int, pairs: int = 1) -> dict[str, Any]:
    """The rate at which ``pairs`` pairs of the C or C++ examples, each pair on an address
    of its own and all at once, move ``count`` messages in all."""
    stamp = time.monotonic_ns()
    host, port = server.url.rsplit("@", 1)[-1].removeprefix("amqp://").split(":")
    per_pair = count // pairs
    commands = []
    for i in range(pairs):
        address = f"{server.address_prefix}compare-{stamp}-{i}"
        if kind == "c":
            recv = [str(BUILD / "receive"), host, port, address, str(per_pair)]
            send = [str(BUILD / "send"), host, port, address, str(per_pair)]
        else:
            target = f"{host}:{port}/{address}"
            auth = ["-u", "guest", "-p", "guest"] if "@" in server.url else []
            recv = [str(BUILD / "simple_recv"), "-a", target, "-m", str(per_pair), *auth]
            send = [str(BUILD / "simple_send"), "-a", target, "-m", str(per_pair), *auth]
        commands.append((recv, send))
    start = time.perf_counter()
    receivers = [
        subprocess.Popen(recv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for recv, _ in commands
    ]
    time.sleep(0.2)  # let the receivers attach first, as petrel bench does
    senders = [
        subprocess.Popen(send, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _, send in commands
    ]
    errors = []
    try:
        for proc in senders:
            _, err = proc.communicate(timeout=900)
            if proc.returncode:
                errors.append(err.decode().strip())
        for proc in receivers:
            _, err = proc.communicate(timeout=120)
            if proc.returncode:
                errors.append(err.decode().strip())
    except subprocess.TimeoutExpired:
        for proc in (*senders, *receivers):
            proc.kill()
            proc.communicate()
        raise RuntimeError("a receiver did not get every message") from None
    elapsed = time.perf_counter() - start - 0.2
    if errors:
        raise RuntimeError(" ".join(errors))
    return {"msgs_per_s": round(per_pair * pairs / elapsed, 1), "latency_ms": {}}


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Row:
    broker: str
    case: str
    clients: str
    layout: str
    msgs_per_s: float | None
    p99_ms: float | None
    broker_cpu_s: float
    note: str = ""


def measure(server: Server, scale: float, only_cases: set[str] | None) -> list[Row]:
    rows: list[Row] = []
    run_bench(server, "petrel", ["--size", "100"], 2000, 1)  # warm up
    plans: list[tuple[str, str, str, Any]] = []
    for case, args, base in CASES:
        if only_cases and case not in only_cases:
            continue
        count = max(8, int(base * scale))
        for layout, n in LAYOUTS:
            for client in ("petrel", "proton"):
                if "--durable" in args and not server.durable:
                    continue
                plans.append((case, client, layout, (run_bench, client, args, count, n)))
    small = max(1000, int(100_000 * scale))
    for layout, n in LAYOUTS:
        if server.name != "rabbitmq":
            plans.append(("small unsettled", "C send/receive", layout, (run_native, "c", small, n)))
        plans.append(
            ("small unsettled", "C++ simple_send/recv", layout, (run_native, "cpp", small, n))
        )
    for case, clients, layout, (func, *args) in plans:
        before = server.cpu_seconds()
        label = {"petrel": "petrel bench", "proton": "petrel bench --client proton"}.get(
            clients, clients
        )
        try:
            data = func(server, *args)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            row = Row(server.name, case, label, layout, None, None, 0.0, f"failed: {exc}")
        else:
            row = Row(
                server.name,
                case,
                label,
                layout,
                data["msgs_per_s"],
                data["latency_ms"].get("p99"),
                round(server.cpu_seconds() - before, 2),
                data.get("note", ""),
            )
        print(json.dumps(row.__dict__), flush=True)
        rows.append(row)
    return rows


def medians(rows: list[Row]) -> list[Row]:
    """One row per broker, case, clients and layout: the median rate of its rounds (a failed
    round counts as no rate), with that round's latency and CPU."""
    groups: dict[tuple[str, str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.broker, row.case, row.clients, row.layout), []).append(row)
    out = []
    for group in groups.values():
        ranked = sorted(group, key=lambda r: r.msgs_per_s or 0.0)
        out.append(ranked[len(ranked) // 2])
    return out


def table(rows: list[Row]) -> str:
    petrel = {(r.case, r.clients, r.layout): r.msgs_per_s for r in rows if r.broker == "petrel"}
    out = [
        "| case | clients | layout | broker | msgs/s | p99 ms | broker CPU s | Petrel ÷ this |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    order = {name: i for i, (name, _, _) in enumerate(CASES)}
    rows = sorted(
        rows,
        key=lambda r: (order.get(r.case, 99), r.clients, r.layout, list(BROKERS).index(r.broker)),
    )
    for r in rows:
        mine = petrel.get((r.case, r.clients, r.layout))
        ratio = ""
        if r.broker != "petrel" and mine and r.msgs_per_s:
            ratio = f"{mine / r.msgs_per_s:.2f}"
        rate = f"{r.msgs_per_s:,.0f}" if r.msgs_per_s else r.note or "-"
        p99 = f"{r.p99_ms:,.1f}" if r.p99_ms is not None else "-"
        cpu = f"{r.broker_cpu_s:.2f}" if r.msgs_per_s else "-"
        note = f" ({r.note})" if r.note and r.msgs_per_s else ""
        out.append(
            f"| {r.case} | {r.clients} | {r.layout} | {r.broker} | {rate}{note} | {p99} | {cpu}"
            f" | {ratio} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count by this")
    parser.add_argument("--brokers", default=",".join(BROKERS))
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every broker this many times, interleaved; the table shows medians",
    )
    args = parser.parse_args()
    if shutil.which("g++") is None or shutil.which("pkg-config") is None:
        sys.exit("needs g++ and pkg-config: apt-get install g++ pkg-config")
    build_c_examples()
    build_cpp_examples()
    rows: list[Row] = []
    for _ in range(args.rounds):
        for name in args.brokers.split(","):
            with BROKERS[name]() as server:
                rows += measure(server, args.scale, set(args.case) if args.case else None)
    text = table(medians(rows))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()

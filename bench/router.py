"""Router network figures: throughput and latency through 1, 2 and 3 routers, and how fast
the network heals and learns.

    python bench/router.py [--runs 3] [--scale 1.0] [--only throughput,failover,brokers]

**Through the routers.**  A line of three ``petrel router`` processes,
A-B-C, on loopback.  The clients are native Proton programs:

- ``C++ rtt``: a small Proton C++ program (its source is below, built into
  ``bench/.build``) with a sender on one router and a receiver on another in
  one container, so both ends read the same clock: each message carries its
  send time, and the receiver records send-to-receive latency.  Unsettled
  (the sender counts acceptances), at most ``window`` messages in flight:
  ``window 1`` gives the latency of one message through an idle path,
  ``window 200`` the throughput and the latency under load.
- ``C send/receive``: Proton's C examples (as ``bench/broker.py`` builds them),
  msgs/s only; the time runs from the sender's start to the receiver's exit,
  once the sender's router knows the receiver's address.

1 hop is sender and receiver on A; 2 hops A to B; 3 hops A to C.  Beside
them, as one-hop baselines with the same clients: ``petrel broker`` (memory
store) and Proton's C ``broker`` example (credit window raised to 1000).

**Healing and learning.**  Five routers: A and E joined by a cheap path
A-B-E (cost 2) and a dear one A-C-D-E (cost 3); a Proton Python sender on A
streams to a receiver on E (500 msgs/s, unsettled, resending what comes back
released or modified).  Measured from the fault to the first message that
arrives along the dear path: B killed (SIGKILL), B hung (SIGSTOP: noticed by
its silence), the A-B link cut (through a TCP proxy); and the time from a
receiver attaching on E, for an address a sender on A waits to send to, to
its first message.  Arrival times are taken in the client's event loop (10 ms
granularity).

**Brokers and edges** (``--only brokers``, not in the default run).  With the
C++ rtt client, each case beside the same client straight to a ``petrel broker``
(memory store) in the same run: a producer on edge E1 and a consumer on edge E2
through two interior routers I1-I2 (E1's uplink I1, E2's I2); a waypoint queue
``orders`` on a Petrel broker behind router A (autolinks), the producer on B and
the consumer on A; a link-routed producer on A and consumer on B (``lr.``), the
broker's link carried hop by hop.

Each case runs ``--runs`` times; one JSON line per case gives the medians
(and every run's figure).  Benchmarks are not tests: nothing here asserts a
speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
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
sys.path.insert(0, str(HERE.parent))  # the repository: the tests' router helpers

from tests.helpers.routers import (  # noqa: E402
    RouterNetwork,
    router_network,
    router_network_configs,
    run_edge,
)
from tests.helpers.traffic import Traffic  # noqa: E402
from tests.integration.test_router_brokers import CONFIG_B, config_a  # noqa: E402

from broker import BUILD, build_c_examples, free_port, wait_port  # noqa: E402

PETREL = Path(sys.executable).parent / "petrel"

#: One process, two connections: a sender to SEND_URL, a receiver from RECV_URL, both on
#: ADDRESS; COUNT messages of SIZE bytes, at most WINDOW unsettled.  Prints one JSON line.
RTT_CPP = r"""
#include <proton/connection.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/error_condition.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender.hpp>
#include <proton/tracker.hpp>
#include <proton/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch()).count();
}

class rtt : public proton::messaging_handler {
    std::string send_url, recv_url;
    int total, window;
    std::string payload;
    proton::sender snd;
    proton::receiver rcv;
    int sent = 0, accepted = 0, other = 0, received = 0;
    bool opened = false, done = false;
    int64_t first = 0, last = 0;
    std::vector<double> latency_ms;

  public:
    int status = 1;
    rtt(std::string s, std::string r, int n, int w, int size)
        : send_url(s), recv_url(r), total(n), window(w), payload(size, 'x') {
        latency_ms.reserve(n);
    }

    void on_container_start(proton::container& c) override {
        rcv = c.open_receiver(recv_url, proton::receiver_options().credit_window(
            std::max(window, 10)));
    }

    void on_receiver_open(proton::receiver& r) override {
        if (!opened) { opened = true; snd = r.container().open_sender(send_url); }
    }

    void on_sendable(proton::sender& s) override { fill(s); }

    void fill(proton::sender& s) {
        while (s.credit() > 0 && sent < total && sent - accepted - other < window) {
            proton::message m;
            m.body(payload);
            int64_t t = now_ns();
            m.properties().put("t", t);
            if (!first) first = t;
            s.send(m);
            ++sent;
        }
    }

    void on_tracker_accept(proton::tracker& t) override { ++accepted; next(t); }
    void on_tracker_reject(proton::tracker& t) override { ++other; next(t); }
    void on_tracker_release(proton::tracker& t) override { ++other; next(t); }

    void next(proton::tracker& t) {
        if (accepted + other >= total && received >= total) finish(t.container());
        else fill(snd);
    }

    void on_message(proton::delivery& d, proton::message& m) override {
        int64_t t = now_ns();
        int64_t stamp = proton::get<int64_t>(m.properties().get("t"));
        latency_ms.push_back((t - stamp) / 1e6);
        last = t;
        ++received;
        if (accepted + other >= total && received >= total) finish(d.container());
    }

    void finish(proton::container& c) {
        if (done) return;
        std::vector<double> l(latency_ms);
        std::sort(l.begin(), l.end());
        auto pct = [&](double p) {
            return l.empty() ? 0.0 : l[std::min(l.size() - 1, (size_t)(p * l.size()))];
        };
        double seconds = (last - first) / 1e9;
        std::cout << "{\"count\": " << received << ", \"seconds\": " << seconds
                  << ", \"msgs_per_s\": " << (seconds > 0 ? received / seconds : 0)
                  << ", \"p50_ms\": " << pct(0.50) << ", \"p99_ms\": " << pct(0.99)
                  << ", \"not_accepted\": " << other << "}" << std::endl;
        status = other ? 2 : 0;
        done = true;
        snd.connection().close();
        rcv.connection().close();
        c.stop();  // (the connections' close is not waited for: errors after done are ignored)
    }

    void on_error(const proton::error_condition& e) override {
        if (done) return;
        std::cerr << "error: " << e.what() << std::endl;
        status = 3;
        exit(3);
    }
};

int main(int argc, char** argv) {
    if (argc != 6) {
        std::cerr << "usage: rtt SEND_URL RECV_URL COUNT WINDOW SIZE" << std::endl;
        return 1;
    }
    rtt handler(argv[1], argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
    proton::container(handler).run();
    return handler.status;
}
"""


def build_rtt() -> Path:
    """Compile the C++ rtt client into bench/.build (once)."""
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "router_rtt"
    source = BUILD / "router_rtt.cpp"
    if binary.exists() and source.exists() and source.read_text() == RTT_CPP:
        return binary
    source.write_text(RTT_CPP)
    found = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libqpid-proton-cpp"],
        capture_output=True,
        text=True,
        check=False,
    )
    # Debian's libqpid-proton-cpp.pc names .pc files no package ships: link by name then.
    flags = found.stdout.split() if found.returncode == 0 else ["-lqpid-proton-cpp"]
    subprocess.run(["g++", "-O2", "-std=c++11", "-o", str(binary), str(source), *flags], check=True)
    return binary


# --- what messages go through -------------------------------------------------------------------


@dataclass
class Target:
    """Where the clients connect: sender to ``send``, receiver to ``recv`` (host:port)."""

    name: str
    send: str
    recv: str
    #: Wait until the sender's side knows the receiver's address (routers only).
    ready: Callable[[str], None] | None = None


@contextlib.contextmanager
def petrel_broker() -> Iterator[Target]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="petrel-bench-") as data:
        proc = subprocess.Popen(
            [str(PETREL), "broker", "--listen", f"amqp://127.0.0.1:{port}", "--store", "memory",
             "--data-dir", data, "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(port)
            yield Target("petrel broker", f"127.0.0.1:{port}", f"127.0.0.1:{port}")
        finally:
            _stop(proc)


@contextlib.contextmanager
def proton_c_broker() -> Iterator[Target]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BUILD / "broker"), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield Target("proton-c broker", f"127.0.0.1:{port}", f"127.0.0.1:{port}")
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def router_targets(net: RouterNetwork) -> list[Target]:
    def hostport(router: str) -> str:
        return f"127.0.0.1:{net[router].port}"

    def knows(router: str, others: list[str]) -> Callable[[str], None]:
        return lambda address: net.wait_for_address(router, address, others)

    return [
        Target("router 1 hop", hostport("A"), hostport("A")),
        Target("router 2 hops", hostport("A"), hostport("B"), knows("A", ["B"])),
        Target("router 3 hops", hostport("A"), hostport("C"), knows("A", ["C"])),
    ]


# --- the clients ---------------------------------------------------------------------------------


def _address() -> str:
    return f"bench-{time.monotonic_ns()}"


def run_rtt(
    target: Target, count: int, window: int, size: int, address: str | None = None
) -> dict[str, Any]:
    address = address or _address()
    rtt = BUILD / "router_rtt"
    # The receiver attaches first; the sender gets credit once the address is known.  The
    # clock starts at the first send, so the address's propagation is not counted.
    result = subprocess.run(
        [str(rtt), f"{target.send}/{address}", f"{target.recv}/{address}", str(count),
         str(window), str(size)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"rtt exited {result.returncode}: {result.stderr.strip()[-300:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def run_c(target: Target, count: int) -> dict[str, Any]:
    address = _address()
    send_host, send_port = target.send.split(":")
    recv_host, recv_port = target.recv.split(":")
    receiver = subprocess.Popen(
        [str(BUILD / "receive"), recv_host, recv_port, address, str(count)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if target.ready is not None:
            target.ready(address)
        else:
            time.sleep(0.2)  # a broker: let the receiver attach first, as compare.py does
        start = time.perf_counter()
        sender = subprocess.run(
            [str(BUILD / "send"), send_host, send_port, address, str(count)],
            capture_output=True,
            timeout=600,
            check=False,
        )
        _, err = receiver.communicate(timeout=120)
        elapsed = time.perf_counter() - start
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    if sender.returncode or receiver.returncode:
        raise RuntimeError(f"{sender.stderr.decode().strip()} {err.decode().strip()}".strip())
    return {"msgs_per_s": count / elapsed}


# --- healing and learning ------------------------------------------------------------------------

#: A-B-E costs 2, A-C-D-E costs 3.  B dials its neighbours (a restarted B is back at once).
FIVE = {"B-A": 1, "B-E": 1, "A-C": 1, "C-D": 1, "D-E": 1}
CHEAP = ("A", "B", "E")
DEAR = ("A", "C", "D", "E")


def _stream(net: RouterNetwork, address: str) -> Traffic:
    traffic = Traffic(address)
    traffic.add_receiver(net["E"].url, trace=True)
    traffic.start_sending(net["A"].url, rate=500)
    traffic.pump(
        lambda: len(traffic.arrivals) >= 50 and traffic.arrivals[-1].trace == CHEAP,
        what="traffic along A-B-E",
    )
    return traffic


def _first_along(traffic: Traffic, path: tuple[str, ...], after: float) -> float:
    """Seconds from ``after`` to the first arrival along ``path`` at or after it."""
    traffic.pump(
        lambda: any(a.trace == path and a.at >= after for a in traffic.arrivals[-200:]),
        timeout=60,
        what=f"a message along {'-'.join(path)}",
    )
    return min(a.at for a in traffic.arrivals if a.trace == path and a.at >= after) - after


def heal_kill(net: RouterNetwork) -> dict[str, Any]:
    traffic = _stream(net, _address())
    try:
        fault = time.monotonic()
        net["B"].kill(signal.SIGKILL)
        moved = _first_along(traffic, DEAR, fault)
        restarted = time.monotonic()
        net["B"].start()
        back = _first_along(traffic, CHEAP, restarted)
        return {"seconds": moved, "back_after_restart_s": back}
    finally:
        traffic.close()
        net.wait_converged()


def heal_stop(net: RouterNetwork) -> dict[str, Any]:
    traffic = _stream(net, _address())
    try:
        fault = time.monotonic()
        net["B"].kill(signal.SIGSTOP)
        moved = _first_along(traffic, DEAR, fault)
        resumed = time.monotonic()
        net["B"].kill(signal.SIGCONT)
        back = _first_along(traffic, CHEAP, resumed)
        return {"seconds": moved, "back_after_sigcont_s": back}
    finally:
        if net["B"].stopped:
            net["B"].kill(signal.SIGCONT)
        traffic.close()
        net.wait_converged()


def heal_cut(net: RouterNetwork) -> dict[str, Any]:
    traffic = _stream(net, _address())
    try:
        fault = time.monotonic()
        net.cut("B", "A")
        moved = _first_along(traffic, DEAR, fault)
        healed = time.monotonic()
        net.heal("B", "A")
        back = _first_along(traffic, CHEAP, healed)
        return {"seconds": moved, "back_after_heal_s": back}
    finally:
        net.heal("B", "A")
        traffic.close()
        net.wait_converged()


def learn_receiver(net: RouterNetwork) -> dict[str, Any]:
    traffic = Traffic(_address())
    try:
        traffic.start_sending(net["A"].url, rate=1000)
        traffic.pump(
            lambda: bool(traffic.sender.state & traffic.sender.REMOTE_ACTIVE),
            what="the sender attached",
        )
        traffic.pump(timeout=0.2)
        attached = time.monotonic()
        traffic.add_receiver(net["E"].url)
        traffic.pump(lambda: traffic.arrivals, timeout=60, what="the first message")
        return {"seconds": traffic.arrivals[0].at - attached}
    finally:
        traffic.close()


# --- the run -------------------------------------------------------------------------------------


#: The figures a run may give, in the order they are printed (medians over the runs).
METRICS = (
    "msgs_per_s", "p50_ms", "p99_ms", "seconds",
    "back_after_restart_s", "back_after_sigcont_s", "back_after_heal_s",
)  # fmt: skip


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def report(case: str, target: str, client: str, runs: list[dict[str, Any]], **extra: Any) -> None:
    line: dict[str, Any] = {"case": case, "target": target, "client": client, **extra}
    line["runs"] = len(runs)
    keys = [k for k in METRICS if any(k in run for run in runs)]
    for key in keys:
        values = [float(run[key]) for run in runs if key in run]
        line[key] = _median(values)
        if len(values) > 1:
            line[f"{key}_each"] = [round(v, 3) for v in values]
    not_accepted = sum(int(run.get("not_accepted", 0)) for run in runs)
    if not_accepted:
        line["not_accepted"] = not_accepted
    errors = [run["error"] for run in runs if "error" in run]
    if errors:
        line["errors"] = errors
    print(json.dumps(line), flush=True)


def repeat(runs: int, func: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for _ in range(runs):
        try:
            results.append(func())
        except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as exc:
            results.append({"error": str(exc).splitlines()[0][:300]})
    return results


def throughput(args: argparse.Namespace) -> None:
    build_c_examples()
    build_rtt()
    count = max(100, int(20_000 * args.scale))
    ping = max(50, int(1_000 * args.scale))
    c_count = max(100, int(20_000 * args.scale))

    def measure(target: Target) -> None:
        report(
            "latency", target.name, "C++ rtt, window 1",
            repeat(args.runs, lambda: run_rtt(target, ping, 1, 100)), count=ping, size=100,
        )  # fmt: skip
        report(
            "throughput", target.name, "C++ rtt, window 200",
            repeat(args.runs, lambda: run_rtt(target, count, 200, 100)), count=count, size=100,
        )  # fmt: skip
        report(
            "throughput", target.name, "C send/receive",
            repeat(args.runs, lambda: run_c(target, c_count)), count=c_count,
        )  # fmt: skip

    for baseline in (petrel_broker, proton_c_broker):
        with baseline() as target:
            measure(target)
    with router_network({"A-B": 1, "B-C": 1}) as net:
        for target in router_targets(net):
            measure(target)


def failover(args: argparse.Namespace) -> None:
    with router_network(FIVE, proxies=True) as net:
        for case, func in (
            ("from SIGKILL of B to flowing on A-C-D-E", heal_kill),
            ("from SIGSTOP of B to flowing on A-C-D-E", heal_stop),
            ("from cutting A-B to flowing on A-C-D-E", heal_cut),
            ("from a new receiver on E to its first message from A", learn_receiver),
        ):
            runs = repeat(args.runs, lambda f=func: f(net))  # type: ignore[misc]
            report("network", "5 routers", "proton python", runs, what=case)


@contextlib.contextmanager
def _petrel_broker_on(port: int) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryDirectory(prefix="petrel-bench-") as data:
        proc = subprocess.Popen(
            [str(PETREL), "broker", "--listen", f"amqp://127.0.0.1:{port}", "--store", "memory",
             "--data-dir", data, "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(port)
            yield proc
        finally:
            _stop(proc)


def brokers(args: argparse.Namespace) -> None:
    build_rtt()
    count = max(100, int(10_000 * args.scale))
    ping = max(50, int(500 * args.scale))

    def measure(case: str, target: Target, address: str | None = None) -> None:
        def fixed() -> str | None:
            return address

        report(
            case, target.name, "C++ rtt, window 1",
            repeat(args.runs, lambda: run_rtt(target, ping, 1, 100, fixed())),
            count=ping, size=100,
        )  # fmt: skip
        report(
            case, target.name, "C++ rtt, window 200",
            repeat(args.runs, lambda: run_rtt(target, count, 200, 100, fixed())),
            count=count, size=100,
        )  # fmt: skip

    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="petrel-bench-")))
        port = free_port()
        stack.enter_context(_petrel_broker_on(port))
        broker = f"127.0.0.1:{port}"
        configs = {"A": config_a(port), "B": CONFIG_B}
        net = stack.enter_context(router_network_configs({"B-A": 1}, configs, log_dir=logs))
        a, b = f"127.0.0.1:{net['A'].port}", f"127.0.0.1:{net['B'].port}"
        measure("waypoint", Target("petrel broker direct", broker, broker), "orders")
        measure(
            "waypoint", Target("queue orders behind A: send on B, receive on A", b, a), "orders"
        )
        measure("link route", Target("petrel broker direct", broker, broker), "lr.bench")
        measure("link route", Target("lr. behind A: send on A, receive on B", a, b), "lr.bench")

        interior = stack.enter_context(router_network({"I1-I2": 1}, log_dir=logs / "edges"))
        e1 = stack.enter_context(run_edge("E1", [interior["I1"].port], log_dir=logs / "edges"))
        e2 = stack.enter_context(run_edge("E2", [interior["I2"].port], log_dir=logs / "edges"))
        time.sleep(1.0)  # the uplinks open
        measure("edges", Target("petrel broker direct", broker, broker))
        measure(
            "edges",
            Target("E1 to E2 via I1-I2", f"127.0.0.1:{e1.port}", f"127.0.0.1:{e2.port}"),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case (medians reported)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply message counts")
    parser.add_argument("--only", default="throughput,failover", help="which parts to run")
    args = parser.parse_args()
    if shutil.which("g++") is None or shutil.which("pkg-config") is None:
        sys.exit("needs g++ and pkg-config: apt-get install g++ pkg-config")
    parts = set(args.only.split(","))
    if "throughput" in parts:
        throughput(args)
    if "failover" in parts:
        failover(args)
    if "brokers" in parts:
        brokers(args)


if __name__ == "__main__":
    main()

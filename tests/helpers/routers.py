"""Router networks for tests: ``petrel router`` processes, links to cut, traffic to watch.

    with router_network({"A-B": 1, "B-C": 1}, proxies=True) as net:
        traffic = Traffic("orders")
        traffic.add_receiver(net["C"].url, trace=True)
        traffic.start_sending(net["A"].url, total=100)
        traffic.pump(lambda: traffic.done, what="every message accepted")
        net.cut("A", "B")            # the link's proxy drops its connections, refuses new ones
        net["B"].kill()              # SIGKILL (or SIGSTOP / SIGCONT), then net["B"].restart()

- :class:`RouterProcess` is one ``petrel router`` (its ports, its log file,
  kill/restart); :func:`run_router` runs one on its own.
- :func:`router_network` starts a network from a compact spec: ``{"A-B": cost}``
  means router A dials router B's inter-router listener with that cost (the
  link's cost, since B's listener says 1).  Every router has a client listener
  and an inter-router listener.  With ``proxies=True`` each link goes through a
  :class:`TcpProxy` in the test process, so the test can cut one link and heal
  it while both routers run.  It waits until every router is listening and the
  network has converged: each router's ``petrel.router.node`` table (read
  through management, with Petrel's client) gives the least-cost path cost the
  spec implies to every router it can reach.
- :class:`Traffic` is numbered traffic through Proton's Python client: one
  sender and any number of receivers in one container that the test thread
  pumps, resending whatever comes back released or modified (at least once),
  and recording each copy's receiver and trace (``x-opt-petrel.trace``).

Nothing here asserts a duration: waits poll with a deadline and fail with
what they saw.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proton import symbol

from petrel.router.routing import Timers
from tests.helpers.servers import free_port

__all__ = [
    "ANN_INGRESS",
    "ANN_TRACE",
    "CAP_TRACE",
    "IN_PROCESS_TIMERS",
    "PETREL",
    "EdgeProcess",
    "RouterNetwork",
    "RouterProcess",
    "TcpProxy",
    "expected_costs",
    "parse_links",
    "router_network",
    "router_network_configs",
    "run_edge",
    "run_router",
    "wait_until",
]

PETREL = Path(sys.executable).with_name("petrel")
CAP_TRACE = "petrel:trace"
ANN_TRACE = symbol("x-opt-petrel.trace")
ANN_INGRESS = symbol("x-opt-petrel.ingress")
#: The line ``petrel router`` logs once its listeners are bound.
READY = "petrel router ready on"
#: How long a helper waits for routers before the test fails.
TIMEOUT = 30.0
#: Timers for routers run in the test's own process and loop, beside its clients: quick
#: hellos and advertisements, so that a network forms in a fraction of a second, but a
#: neighbour given up only after 2 s of silence.  With 0.7 s, a loop stalled that long on a
#: loaded machine dropped its neighbours mid-test (seen in CI).  Loss by silence is tested
#: with ``petrel router`` processes and SIGSTOP (tests/integration/test_router_triangle.py).
IN_PROCESS_TIMERS = Timers(
    hello_interval=0.2, hello_max_age=2.0, ra_interval=0.2, request_retry=0.2
)


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = TIMEOUT,
    interval: float = 0.05,
    what: str = "a condition",
    status: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition()`` until it returns something true (returned); ``AssertionError``
    naming ``what`` (and ``status()``) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{status()}" if status is not None else ""
            raise AssertionError(f"not reached within {timeout} s: {what}{extra}")
        time.sleep(interval)


# --- a link that can be cut -------------------------------------------------------------------


class TcpProxy:
    """A TCP relay on ``127.0.0.1:port`` to ``127.0.0.1:target`` in threads of the test process.

    :meth:`cut` closes every connection through it and stops listening (a dial
    is refused); :meth:`heal` listens again on the same port.
    """

    def __init__(self, target: int, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.connections = 0
        self.heal()

    def heal(self) -> None:
        """Listen (again) and relay what comes."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name=f"proxy-{self.port}", daemon=True
        )
        self._acceptor.start()

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones until :meth:`heal`."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    close = cut

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            if self._listener is not listener:  # cut meanwhile
                client.close()
                upstream.close()
                return
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            for sock in (source, sink):
                if sock in self._sockets:
                    self._sockets.discard(sock)
                    sock.close()


# --- one router -------------------------------------------------------------------------------


@dataclass
class RouterProcess:
    """A ``petrel router`` in a subprocess (see :func:`run_router`).

    ``connect`` lists the ports it dials with the cost of each.  The log
    (stderr) of every run goes to one file, runs separated by a line
    ``=== restart``.
    """

    id: str
    port: int
    inter_port: int
    log_path: Path
    connect: list[tuple[int, int]] = field(default_factory=list)
    config: str | None = None
    log_level: str = "info"
    proc: subprocess.Popen[bytes] | None = None
    #: SIGSTOPped (its management cannot answer).
    stopped: bool = False
    #: Killed on purpose (its exit is no surprise).
    killed: bool = False

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}"

    @property
    def inter_url(self) -> str:
        return f"amqp://127.0.0.1:{self.inter_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def running(self) -> bool:
        """Alive and not stopped: it answers."""
        return self.alive and not self.stopped

    def command(self) -> list[str]:
        command = [
            str(PETREL), "router", "--id", self.id, "--listen", self.url,
            "--inter-router-listen", self.inter_url, "--log-level", self.log_level,
            "--no-http",
        ]  # fmt: skip
        for port, cost in self.connect:
            command += ["--connect-router", f"amqp://127.0.0.1:{port}?cost={cost}"]
        if self.config is not None:
            path = self.log_path.with_suffix(".toml")
            path.write_text(self.config)
            command += ["--config", str(path)]
        return command

    def log(self) -> str:
        """Everything the router wrote to stderr so far (all its runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, text: str) -> list[str]:
        """The log lines containing ``text``."""
        return [line for line in self.log().splitlines() if text in line]

    def spawn(self) -> None:
        """Start the process (without waiting for it)."""
        assert not self.alive, f"router {self.id} runs already"
        with open(self.log_path, "ab") as log_file:
            if log_file.tell():
                log_file.write(b"=== restart\n")
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        self.stopped = self.killed = False

    def crashed(self) -> bool:
        """It exited without being told to (it was not killed nor stopped)."""
        return self.proc is not None and self.proc.poll() is not None and not self.killed

    def wait_ready(self, timeout: float = TIMEOUT) -> None:
        """Wait for this run's ``ready`` log line; ``RuntimeError`` if it exits first."""
        proc = self.proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        while True:
            run = self.log().rsplit("=== restart\n", 1)[-1]
            if READY in run:
                return
            if proc.poll() is not None:
                raise RuntimeError(
                    f"router {self.id} exited with {proc.returncode}:\n{run[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"router {self.id} not ready after {timeout} s:\n{run[-3000:]}")
            time.sleep(0.02)

    def start(self, timeout: float = TIMEOUT) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig``: SIGKILL (waits for the exit), SIGSTOP or SIGCONT."""
        proc = self.proc
        assert proc is not None and proc.poll() is None, f"router {self.id} is not running"
        os.kill(proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False
        elif sig == signal.SIGKILL:
            self.killed = True
            proc.wait(timeout=10)
            self.stopped = False

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (SIGKILL after ``timeout`` s); the exit code (``None`` if it never ran)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            self.killed = True
            if self.stopped:
                os.kill(proc.pid, signal.SIGCONT)
                self.stopped = False
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(timeout=timeout)

    def restart(self, timeout: float = TIMEOUT) -> None:
        """Stop it if it runs, start it again on the same ports."""
        if self.alive:
            self.stop()
        self.start(timeout)


@contextlib.contextmanager
def run_router(
    router_id: str,
    *,
    port: int | None = None,
    inter_port: int | None = None,
    connect: Sequence[tuple[int, int]] = (),
    config: str | None = None,
    log_dir: Path | str | None = None,
    log_level: str = "info",
    timeout: float = TIMEOUT,
) -> Iterator[RouterProcess]:
    """Run one ``petrel router`` (free ports unless given) until the block ends; yields it
    once it is listening.  ``connect``: ``(port, cost)`` of the routers it dials."""
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="petrel-router-"))
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        router = RouterProcess(
            router_id,
            port or free_port(),
            inter_port or free_port(),
            Path(log_dir) / f"router-{router_id}.log",
            list(connect),
            config,
            log_level,
        )
        try:
            router.start(timeout)
            yield router
        finally:
            router.stop()


@dataclass
class EdgeProcess(RouterProcess):
    """An edge ``petrel router`` (``--mode edge``): a client listener and its uplinks
    (``uplinks``: interior routers' client ports, in order: the first to open is active).
    It has no inter-router listener (``inter_port`` is unused)."""

    uplinks: list[int] = field(default_factory=list)

    def command(self) -> list[str]:
        command = [
            str(PETREL), "router", "--id", self.id, "--mode", "edge", "--listen", self.url,
            "--log-level", self.log_level, "--no-http",
        ]  # fmt: skip
        for port in self.uplinks:
            command += ["--connect-uplink", f"amqp://127.0.0.1:{port}"]
        if self.config is not None:
            path = self.log_path.with_suffix(".toml")
            path.write_text(self.config)
            command += ["--config", str(path)]
        return command


@contextlib.contextmanager
def run_edge(
    router_id: str,
    uplinks: Sequence[int],
    *,
    log_dir: Path | str,
    port: int | None = None,
    timeout: float = TIMEOUT,
) -> Iterator[EdgeProcess]:
    """Run one edge router dialling the interior routers' client ports ``uplinks`` until
    the block ends; yields it once it is listening (its uplinks may still be opening)."""
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    edge = EdgeProcess(
        router_id,
        port or free_port(),
        0,
        Path(log_dir) / f"router-{router_id}.log",
        uplinks=list(uplinks),
    )
    try:
        edge.start(timeout)
        yield edge
    finally:
        edge.stop()


# --- a network --------------------------------------------------------------------------------

#: ``(dialler, listener)`` -> cost.
Links = dict[tuple[str, str], int]


def parse_links(spec: Mapping[Any, int]) -> Links:
    """``{"A-B": 5, "CD": 1, ("E", "F"): 2}`` -> ``{("A", "B"): 5, ...}``: the first router
    dials the second (``"CD"`` only for one-character ids)."""
    links: Links = {}
    for key, cost in spec.items():
        if isinstance(key, tuple):
            a, b = key
        elif "-" in key:
            a, b = key.split("-")
        elif len(key) == 2:
            a, b = key[0], key[1]
        else:
            raise ValueError(f"link {key!r}: write it 'A-B'")
        links[(a, b)] = int(cost)
    return links


def expected_costs(links: Mapping[tuple[str, str], int], root: str) -> dict[str, int]:
    """The least-cost path cost from ``root`` to every router it reaches over ``links``
    (``root`` itself excluded)."""
    graph: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (a, b), cost in links.items():
        graph[a][b] = min(cost, graph[a].get(b, cost))
        graph[b][a] = graph[a][b]
    best = {root: 0}
    heap = [(0, root)]
    while heap:
        here, node = heapq.heappop(heap)
        if here > best.get(node, here):
            continue
        for peer, cost in graph[node].items():
            if here + cost < best.get(peer, here + cost + 1):
                best[peer] = here + cost
                heapq.heappush(heap, (here + cost, peer))
    best.pop(root)
    return best


class RouterNetwork:
    """Routers and the links between them (see the module docstring and
    :func:`router_network`).  ``net["A"]`` is router A's :class:`RouterProcess`."""

    def __init__(self, log_dir: Path, *, proxies: bool, config: str | None) -> None:
        self.log_dir = log_dir
        self.use_proxies = proxies
        self.config = config
        self.routers: dict[str, RouterProcess] = {}
        self.links: Links = {}
        self.proxies: dict[tuple[str, str], TcpProxy] = {}
        self._management: dict[str, Any] = {}

    def __getitem__(self, router_id: str) -> RouterProcess:
        return self.routers[router_id]

    # --- building -----------------------------------------------------------------------------

    def _router(self, router_id: str, config: str | None = None) -> RouterProcess:
        router = self.routers.get(router_id)
        if router is None:
            router = self.routers[router_id] = RouterProcess(
                router_id,
                free_port(),
                free_port(),
                self.log_dir / f"router-{router_id}.log",
                config=config if config is not None else self.config,
            )
        return router

    def _link(self, a: str, b: str, cost: int) -> None:
        """``a`` dials ``b`` (through a proxy when the network has them)."""
        listener = self.routers[b]
        port = listener.inter_port
        if self.use_proxies:
            proxy = self.proxies[(a, b)] = TcpProxy(port)
            port = proxy.port
        self.routers[a].connect.append((port, cost))
        self.links[(a, b)] = cost

    def build(self, links: Links, extra: Sequence[str] = ()) -> None:
        for a, b in links:
            self._router(a)
            self._router(b)
        for router_id in extra:
            self._router(router_id)
        for (a, b), cost in links.items():
            self._link(a, b, cost)

    def start_all(self, timeout: float = TIMEOUT) -> None:
        for router in self.routers.values():
            router.spawn()
        for router in self.routers.values():
            router.wait_ready(timeout)

    def add_router(
        self, router_id: str, links: Mapping[Any, int], *, config: str | None = None
    ) -> RouterProcess:
        """Start another router; ``links`` (as in :func:`router_network`) name it at one
        end.  Returns once it listens (not converged: :meth:`wait_converged`)."""
        parsed = parse_links(links)
        router = self._router(router_id, config)
        for (a, b), cost in parsed.items():
            if router_id not in (a, b):
                raise ValueError(f"link {a}-{b} does not involve {router_id}")
            if a != router_id:
                raise ValueError(f"link {a}-{b}: the new router dials (write {router_id}-{a})")
            self._link(a, b, cost)
        router.start()
        return router

    def stop_all(self) -> None:
        for client in self._management.values():
            with contextlib.suppress(Exception):
                client[0].close(timeout=1)
        self._management.clear()
        for proxy in self.proxies.values():
            proxy.cut()
        crashed = [router for router in self.routers.values() if router.crashed()]
        for router in self.routers.values():
            router.stop()
        for router in crashed:
            # Shown with the test that failed because of it (pytest captures stderr).
            print(
                f"router {router.id} exited by itself with {router.proc.returncode}"  # type: ignore[union-attr]
                f":\n{router.log()[-5000:]}",
                file=sys.stderr,
            )

    def crashed(self) -> list[str]:
        """The routers that exited without being killed or stopped by the test."""
        return [rid for rid, router in self.routers.items() if router.crashed()]

    # --- faults -------------------------------------------------------------------------------

    def _proxy(self, a: str, b: str) -> TcpProxy:
        proxy = self.proxies.get((a, b)) or self.proxies.get((b, a))
        if proxy is None:
            raise KeyError(f"no proxied link between {a} and {b}")
        return proxy

    def cut(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b`` (both routers go on running)."""
        self._proxy(a, b).cut()

    def heal(self, a: str, b: str) -> None:
        self._proxy(a, b).heal()

    def live_links(self) -> Links:
        """The links whose routers both answer and whose proxy is not cut."""
        live: Links = {}
        for (a, b), cost in self.links.items():
            proxy = self.proxies.get((a, b))
            if proxy is not None and proxy.is_cut:
                continue
            if self.routers[a].running and self.routers[b].running:
                live[(a, b)] = cost
        return live

    # --- management ---------------------------------------------------------------------------

    def management(self, router_id: str) -> Any:
        """A :class:`petrel.management.BlockingManagementClient` on a connection to the
        router (kept; made again when it broke)."""
        import petrel
        from petrel.management import BlockingManagementClient

        cached = self._management.get(router_id)
        if cached is not None:
            return cached[1]
        conn = petrel.blocking.connect(self.routers[router_id].url, reconnect=False, timeout=5)
        client = BlockingManagementClient(conn, timeout=5)
        self._management[router_id] = (conn, client)
        return client

    def query(
        self, router_id: str, entity_type: str, attributes: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """``QUERY`` one router's entities of a type (a broken connection is made again once)."""
        for attempt in (1, 2):
            try:
                result = self.management(router_id).query_all(entity_type, list(attributes))
                return list(result.as_dicts())
            except Exception:
                cached = self._management.pop(router_id, None)
                if cached is not None:
                    with contextlib.suppress(Exception):
                        cached[0].close(timeout=1)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def nodes(self, router_id: str) -> dict[str, dict[str, Any]]:
        """Router ``router_id``'s ``petrel.router.node`` table, by node id."""
        rows = self.query(router_id, "petrel.router.node")
        return {str(row["id"]): row for row in rows}

    def costs(self, router_id: str) -> dict[str, int]:
        """The reachable routers ``router_id`` has a path to (itself excluded) -> cost."""
        return {
            node: int(row["cost"])
            for node, row in self.nodes(router_id).items()
            if row.get("reachable") and node != router_id and row.get("cost") is not None
        }

    def next_hop(self, router_id: str, to: str) -> str | None:
        row = self.nodes(router_id).get(to)
        return None if row is None or not row.get("reachable") else row.get("next_hop")

    def path(self, a: str, b: str) -> list[str]:
        """The path management says a message from ``a`` to ``b`` takes (next hops)."""
        hops = [a]
        while hops[-1] != b:
            hop = self.next_hop(hops[-1], b)
            if hop is None or hop in hops or len(hops) > len(self.routers):
                raise AssertionError(f"no path {a} -> {b}: {hops} then {hop}")
            hops.append(hop)
        return hops

    def convergence(self) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        """For each answering router whose table differs from the spec: (has, expected)."""
        live = self.live_links()
        wrong: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        for router_id, router in self.routers.items():
            if not router.running:
                continue
            expected = expected_costs(live, router_id)
            try:
                has = self.costs(router_id)
            except Exception as exc:
                wrong[router_id] = ({"error": repr(exc)}, expected)  # type: ignore[dict-item]
                continue
            if has != expected:
                wrong[router_id] = (has, expected)
        return wrong

    def wait_converged(self, timeout: float = TIMEOUT) -> None:
        """Wait until every answering router's paths cost what the live links imply."""
        last: dict[str, Any] = {}

        def converged() -> bool:
            nonlocal last
            last = self.convergence()
            return not last

        wait_until(
            converged,
            timeout=timeout,
            interval=0.1,
            what="the routers' paths to agree with the links",
            status=lambda: "\n".join(
                f"  {router}: has {has}, expected {expected}"
                for router, (has, expected) in last.items()
            ),
        )

    def remote_routers(self, router_id: str, address: str) -> set[str]:
        """The routers ``router_id`` knows to have receivers for ``address``."""
        for row in self.query(router_id, "petrel.router.address"):
            if row.get("address") == address:
                return set(row.get("remote_routers") or ())
        return set()

    def wait_for_address(
        self, router_id: str, address: str, routers: Sequence[str], timeout: float = TIMEOUT
    ) -> None:
        """Wait until ``router_id`` knows receivers for ``address`` on exactly ``routers``."""
        wanted = set(routers)
        wait_until(
            lambda: self.remote_routers(router_id, address) == wanted,
            timeout=timeout,
            interval=0.1,
            what=f"{router_id} to see receivers for {address} on {sorted(wanted)}",
            status=lambda: f"  it sees {sorted(self.remote_routers(router_id, address))}",
        )

    def wait_for_receivers(
        self, address: str, routers: Sequence[str], timeout: float = TIMEOUT
    ) -> None:
        """Wait until every answering router knows the receivers for ``address`` on
        ``routers`` (each knowing those of the others)."""
        for router_id, router in self.routers.items():
            if router.running:
                others = sorted(set(routers) - {router_id})
                self.wait_for_address(router_id, address, others, timeout)

    def router_stats(self, router_id: str) -> dict[str, Any]:
        """The ``petrel.router`` entity of one router."""
        rows = self.query(router_id, "petrel.router")
        return rows[0]

    def logs(self) -> str:
        """Every router's log, for a failure message."""
        return "\n".join(
            f"--- router {rid} ---\n{router.log()[-4000:]}" for rid, router in self.routers.items()
        )


@contextlib.contextmanager
def router_network(
    links: Mapping[Any, int],
    *,
    routers: Sequence[str] = (),
    proxies: bool = False,
    config: str | None = None,
    converge: bool = True,
    timeout: float = TIMEOUT,
    log_dir: Path | str | None = None,
) -> Iterator[RouterNetwork]:
    """Start a network of routers, wait until it converged, stop it after.

    ``links`` maps ``"A-B"`` (``"AB"`` for one-character ids, or ``("A", "B")``)
    to a cost: A dials B's inter-router listener with ``?cost=N``.
    ``routers`` adds routers that no link names.  ``proxies`` puts each link
    through a :class:`TcpProxy` (for :meth:`RouterNetwork.cut`).  ``config``
    is TOML given to every router (``[[addresses]]``, say).  The routers' logs go
    to ``log_dir`` (kept), or to a temporary directory.
    """
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="petrel-routers-"))
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        net = RouterNetwork(Path(log_dir), proxies=proxies, config=config)
        try:
            net.build(parse_links(links), routers)
            net.start_all(timeout)
            if converge:
                try:
                    net.wait_converged(timeout)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{net.logs()}") from None
            yield net
        finally:
            net.stop_all()


@contextlib.contextmanager
def router_network_configs(
    links: Mapping[Any, int],
    configs: Mapping[str, str],
    *,
    log_dir: Path | str,
    timeout: float = TIMEOUT,
) -> Iterator[RouterNetwork]:
    """As :func:`router_network` (no proxies), each router with its own TOML from
    ``configs`` (by router id; a router not named there has none)."""
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    net = RouterNetwork(Path(log_dir), proxies=False, config=None)
    try:
        parsed = parse_links(links)
        for router_id, config in configs.items():
            net._router(router_id, config)
        net.build(parsed)
        net.start_all(timeout)
        try:
            net.wait_converged(timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{net.logs()}") from None
        yield net
    finally:
        net.stop_all()


# --- traffic ----------------------------------------------------------------------------------

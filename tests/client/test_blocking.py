"""petrel.blocking: the same client from threads, against a Proton broker."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import pytest

import petrel
from petrel import Message
from petrel.blocking import BlockingConnection
from petrel.client import (
    ConnectionClosed,
    ConnectionLost,
    ConnectionState,
    LinkClosed,
    MessageRejected,
    MessageReleased,
    NotFound,
    Timeout,
)
from tests.helpers.servers import free_port

pytestmark = pytest.mark.interop


def test_the_issue_example(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        conn.open_sender(queue).send(petrel.Message(body="hi"))
        d = conn.open_receiver(queue).receive(timeout=5)
        d.accept()
        assert d.message.body == "hi"
    assert conn.state is ConnectionState.CLOSED
    assert not conn._runner.thread.is_alive()


def test_connection_facts_and_errors(url: str) -> None:
    with petrel.blocking.connect(url, container_id="blocking-facts") as conn:
        assert isinstance(conn, BlockingConnection)
        assert conn.container_id == "blocking-facts"
        assert conn.url == url
        assert conn.state is ConnectionState.OPEN
        assert "ANONYMOUS-RELAY" in conn.offered_capabilities
        assert conn.connection.state is ConnectionState.OPEN
        assert "blocking" in repr(conn).lower()
        with pytest.raises(NotFound):
            conn.open_receiver("missing.blocking")
    with pytest.raises(ConnectionClosed):
        conn.close()  # the loop is gone: nothing to do
        conn.open_sender("q")


def test_connect_failure_leaves_no_thread() -> None:
    before = threading.active_count()
    with pytest.raises(ConnectionLost):
        petrel.blocking.connect(f"amqp://127.0.0.1:{free_port()}")
    assert threading.active_count() == before


def test_outcomes(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        sender = conn.open_sender(queue)
        assert sender.address == queue
        assert sender.send("accepted") is None
        with pytest.raises(MessageRejected):
            conn.open_sender("reject.blocking").send("x")
        with pytest.raises(MessageReleased):
            conn.open_sender("release.blocking", retry_released=1).send("x")
        receiver = conn.open_receiver(queue, credit=1)
        first = receiver.receive(timeout=10)
        first.release()
        again = receiver.receive(timeout=10)
        assert again.message.body == "accepted"
        again.modify(delivery_failed=True, annotations={"x-opt-n": 1})
        third = receiver.receive(timeout=10)
        third.reject("amqp:precondition-failed", "bad")
        with pytest.raises(Timeout):
            receiver.receive(timeout=0.2)
        assert third.payload and third.tag is not None


def test_pipelined_sends_return_futures(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        sender = conn.open_sender(queue)
        futures = [sender.send(Message(i), wait=False) for i in range(100)]
        assert all(isinstance(f, concurrent.futures.Future) for f in futures)
        for future in futures:
            assert future.result(timeout=10) is None
        sender.wait_settled(5)
        bad = conn.open_sender("reject.pipelined").send("x", wait=False)
        with pytest.raises(MessageRejected):
            bad.result(timeout=10)
        receiver = conn.open_receiver(queue, auto_accept=True)
        assert [receiver.receive(timeout=10).message.body for _ in range(100)] == list(range(100))


def test_threads_share_one_connection(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        sender = conn.open_sender(queue)

        def produce(tag: int) -> None:
            for i in range(25):
                sender.send(Message(f"{tag}-{i}"))

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        receiver = conn.open_receiver(queue)
        got = set()
        for _ in range(100):
            delivery = receiver.receive(timeout=10)
            got.add(delivery.message.body)
            delivery.accept()
        assert got == {f"{t}-{i}" for t in range(4) for i in range(25)}


def test_iteration_stops_when_the_receiver_closes(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        receiver = conn.open_receiver(queue)
        got: list[Any] = []

        def consume() -> None:
            for delivery in receiver:
                got.append(delivery.message.body)
                delivery.accept()

        thread = threading.Thread(target=consume)
        thread.start()
        with conn.open_sender(queue) as sender:
            sender.send("one")
            sender.send("two")
        while len(got) < 2:
            thread.join(0.01)
        receiver.close()
        thread.join(5)
        assert not thread.is_alive()
        assert got == ["one", "two"]
        with pytest.raises(LinkClosed):
            receiver.receive()


def test_manual_credit_and_drain(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        sender = conn.open_sender(queue, at_most_once=True)
        for i in range(3):
            sender.send(Message(i))
        receiver = conn.open_receiver(queue, credit=0)
        assert receiver.credit == 0
        receiver.add_credit(1)
        assert receiver.receive(timeout=10).message.body == 0
        receiver.add_credit(5)
        receiver.drain(timeout=10)
        assert receiver.credit == 0
        assert receiver.receive(timeout=1).message.body == 1
        assert receiver.receive(timeout=1).message.body == 2


def test_anonymous_and_dynamic(url: str) -> None:
    with (
        petrel.blocking.connect(url) as conn,
        conn.open_receiver(None, dynamic=True) as receiver,
    ):
        assert receiver.address is not None
        conn.open_sender(None).send(Message("hello", to=receiver.address))
        assert receiver.receive(timeout=10).message.body == "hello"


def test_request_and_serve(url: str, queue: str) -> None:
    with petrel.blocking.connect(url) as conn:
        assert conn.request("echo", "blocking ping", timeout=10).body == "blocking ping"
        seen_threads = set()

        def handler(request: Message) -> Any:
            seen_threads.add(threading.current_thread().name)
            return request.body + 1

        with conn.serve(queue, handler) as responder:
            assert conn.request(queue, 41, timeout=10).body == 42
            assert conn.request(queue, 1, timeout=10).body == 2
        assert responder.handled == 2
        assert "petrel-client-loop" not in seen_threads  # handlers run off the loop


def test_state_callback_and_wait_closed(url: str) -> None:
    seen: list[ConnectionState] = []
    conn = petrel.blocking.connect(url, on_state_change=lambda c: seen.append(c.state))
    assert conn.connection.state is ConnectionState.OPEN  # the async connection underneath
    runner = conn._runner
    conn.close()
    assert seen == [ConnectionState.OPEN, ConnectionState.CLOSED]
    assert not runner.thread.is_alive()


def test_wait_closed_times_out(url: str) -> None:
    with petrel.blocking.connect(url) as conn, pytest.raises(TimeoutError):
        conn.wait_closed(timeout=0.05)


def test_blocking_call_from_the_loop_is_refused(url: str) -> None:
    with petrel.blocking.connect(url) as conn:
        result: list[BaseException] = []

        def inside() -> None:
            try:
                conn.open_sender("q")
            except RuntimeError as exc:
                result.append(exc)

        conn._runner.call(inside)
        conn.open_sender("sync-point")  # runs after inside()
        assert result and "own event loop" in str(result[0])


def test_state_changes_iterator(url: str) -> None:
    conn = petrel.blocking.connect(url)
    changes = conn.state_changes()
    conn.close()
    assert [c.state for c in changes] == [ConnectionState.CLOSED]

"""The blocking API: the same client for threaded code, no asyncio in sight.

    python examples/blocking_api.py [URL]

``petrel.blocking.connect()`` runs the async client on a background event
loop; every object is safe to share between threads.
"""

from __future__ import annotations

import os
import sys
import threading

import petrel

QUEUE = "examples.blocking"


def main(url: str) -> None:
    with petrel.blocking.connect(url) as conn:
        sender = conn.open_sender(QUEUE)
        receiver = conn.open_receiver(QUEUE)

        def produce(thread: int) -> None:
            for n in range(3):
                sender.send(petrel.Message(f"thread {thread} message {n}"))

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for _ in range(6):
            delivery = receiver.receive(timeout=10)
            print("received:", delivery.message.body)
            delivery.accept()
        # Request/response works the same way; the handler runs in a worker thread.
        with conn.serve("examples.blocking.double", lambda request: request.body * 2):
            answer = conn.request("examples.blocking.double", 21, timeout=10)
            print("21 doubled is", answer.body)
        # A transaction: its send and its accept take effect together, when the block ends.
        sender.send(petrel.Message("pay the invoice"))
        with conn.transaction() as tx:
            tx.send(sender, "debit")
            tx.accept(receiver.receive(timeout=5))
        committed = receiver.receive(timeout=10)
        print("after the commit:", committed.message.body)
        committed.accept()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))

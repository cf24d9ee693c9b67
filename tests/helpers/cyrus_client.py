"""A Proton (Cyrus SASL) client for the SASL interop tests: run by tests/helpers/proton_cyrus.py.

    python cyrus_client.py URL USER PASSWORD MECHANISM ADDRESS

Allows MECHANISM only, sends one message to ADDRESS and receives it back.  Prints
``OK <mechanism>`` and exits 0, or ``ERROR <what happened>`` and exits 1.
"""

from __future__ import annotations

import sys

from proton import SASL, Message
from proton.utils import BlockingConnection


def main() -> int:
    url, user, password, mechanism, address = sys.argv[1:6]
    if not SASL.extended():
        print("ERROR this proton has no Cyrus SASL")
        return 1
    try:
        conn = BlockingConnection(
            url,
            user=user,
            password=password,
            allowed_mechs=mechanism,
            allow_insecure_mechs=True,  # the tests run without TLS, on loopback
            timeout=20,
        )
        try:
            conn.create_sender(address).send(Message(body="via cyrus"))
            receiver = conn.create_receiver(address)
            message = receiver.receive(timeout=20)
            receiver.accept()
            assert message.body == "via cyrus", message.body
        finally:
            conn.close()
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}")
        return 1
    print(f"OK {mechanism}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

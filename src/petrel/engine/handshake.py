"""Everything before the first AMQP frame: protocol headers (part 2.2) and SASL (part 5.3).

A client with SASL configured sends the SASL header, runs the exchange, then
sends the AMQP header and its open.  A server answers whatever header the
client sends: the SASL header (when it has SASL) starts the exchange, the
AMQP header (after SASL, or instead of it when ``allow_no_sasl``) is
answered with ours.  A header we cannot speak (another version, TLS, not
AMQP at all) is answered with the header we would have wanted, and the
connection ends there, as part 2.2 asks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..codec import encode_into
from ..errors import Condition
from ..spec import SASL_FRAMES, Composite, SaslCode
from ..spec.framing import AMQP_HEADER, FRAME_TYPE_AMQP, FRAME_TYPE_SASL, SASL_HEADER
from .events import SaslCompleted
from .faults import error_of
from .framing import HEADER_PLACEHOLDER, describe_header, pack_header
from .sasl import SaslClient, SaslFailure, SaslServer
from .states import CONNECTION_TRANSITIONS, Input, step

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Handshake"]

log = logging.getLogger("petrel.engine")

_SASL_TYPES = frozenset(SASL_FRAMES.values())


class Handshake:
    """The protocol header exchange and SASL negotiation of one connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sasl_client: SaslClient | None = None
        self.sasl_server: SaslServer | None = None
        self.sasl_done = False

    def start_client(self) -> None:
        """Client ``open()``: the first protocol header."""
        conn = self.connection
        config = conn.config
        if config.sasl is not None:
            self.sasl_client = SaslClient(config.sasl, config.hostname)
            conn._write_protocol_header(SASL_HEADER)
            conn._frame_type = FRAME_TYPE_SASL
        else:
            conn._send_amqp_header()

    def on_header(self, header: bytes) -> None:
        """The peer's 8-byte protocol header arrived."""
        conn = self.connection
        if conn.output.tracer is not None:
            conn.output.tracer.header("<-", header)
        if conn.server:
            self._server_header(header)
            return
        sasl_layer = conn._frame_type == FRAME_TYPE_SASL and not self.sasl_done
        expected = SASL_HEADER if sasl_layer else AMQP_HEADER
        if header != expected:
            self._failed(
                Condition.NOT_IMPLEMENTED,
                f"the server answered with {describe_header(header)}, "
                f"we need {describe_header(expected)}",
            )
            return
        conn._expect_header = False
        if not sasl_layer:
            conn.state = step(
                CONNECTION_TRANSITIONS,
                conn.state,
                Input.RECV_HEADER,
                what="connection",
                remote=True,
            )

    def _server_header(self, header: bytes) -> None:
        conn = self.connection
        config = conn.config
        if header == SASL_HEADER and config.sasl is not None and not self.sasl_done:
            self.sasl_server = server = SaslServer(config.sasl)
            conn._write_protocol_header(SASL_HEADER)
            self._write_sasl(server.mechanisms_frame())
            conn._frame_type = FRAME_TYPE_SASL
            conn._expect_header = False
            return
        bare_ok = self.sasl_done or config.sasl is None or config.allow_no_sasl
        if header == AMQP_HEADER and bare_ok:
            conn.state = step(
                CONNECTION_TRANSITIONS,
                conn.state,
                Input.RECV_HEADER,
                what="connection",
                remote=True,
            )
            conn._expect_header = False
            conn._send_amqp_header()
            if conn._open_requested:
                conn._write_open()
            return
        # Part 2.2: a header we cannot take is answered with one we speak, then we hang up.
        # When we speak the protocol it names (only the version is wrong), we answer with
        # that protocol's header, which tells the client the version to use; else with
        # the one we prefer.
        sasl_wanted = config.sasl is not None and not self.sasl_done
        in_kind = header.startswith(AMQP_HEADER[:5]) and bare_ok
        ours = SASL_HEADER if sasl_wanted and not in_kind else AMQP_HEADER
        conn._write_protocol_header(ours)
        self._failed(
            Condition.NOT_IMPLEMENTED,
            f"the client sent {describe_header(header)}; we speak {describe_header(ours)}",
        )

    def _write_sasl(self, frame: Composite) -> None:
        conn = self.connection
        pre = conn._pre
        start = len(pre)
        pre += HEADER_PLACEHOLDER
        encode_into(pre, frame)
        pack_header(pre, start, len(pre) - start, 2, FRAME_TYPE_SASL, 0)
        if conn.output.tracer is not None:
            conn.output.tracer.frame("->", 0, frame)

    def on_sasl_frame(self, frame: Any) -> None:
        """A SASL frame arrived."""
        if type(frame) not in _SASL_TYPES:
            self.refuse_sasl()
            self._failed(Condition.NOT_ALLOWED, f"a {type(frame).__name__} arrived during SASL")
            return
        if self.connection.server:
            server = self.sasl_server
            assert server is not None
            try:
                self._write_sasl(server.on_frame(frame))
            except SaslFailure as exc:
                self.refuse_sasl()
                self._failed(Condition.NOT_ALLOWED, f"SASL: {exc}")
                return
            if server.done:
                assert server.code is not None
                self._finished(
                    server.mechanism_name,
                    server.code,
                    server.identity,
                    None,
                    username=server.username,
                    reason=server.reason,
                )
            return
        client = self.sasl_client
        assert client is not None
        try:
            answer = client.on_frame(frame)
        except SaslFailure as exc:
            self._failed(Condition.UNAUTHORIZED_ACCESS, f"SASL: {exc}")
            return
        if answer is not None:
            self._write_sasl(answer)
        if client.done:
            assert client.code is not None and client.mechanism is not None
            identity = client.mechanism.identity if client.code == SaslCode.OK else None
            self._finished(client.mechanism.name, client.code, identity, client.additional_data)

    def refuse_sasl(self, code: SaslCode = SaslCode.SYS_PERM) -> None:
        """A server ending the connection while its SASL exchange is under way sends the
        outcome first: part 5.3.2 ends every exchange with one, and without it the client
        cannot tell a refusal from a network failure.  A client that broke the exchange
        will not succeed by trying again as it is, hence ``sys-perm``."""
        server = self.sasl_server
        if server is not None and not server.done:
            self._write_sasl(server.refuse(code))

    def _finished(
        self,
        mechanism: str | None,
        code: SaslCode,
        identity: str | None,
        data: bytes | None,
        *,
        username: str | None = None,
        reason: str | None = None,
    ) -> None:
        conn = self.connection
        conn.sasl_mechanism = mechanism
        conn.sasl_outcome = code
        conn.sasl_identity = identity
        self.sasl_done = True
        conn.output.events.append(SaslCompleted(mechanism, code, identity, data, username, reason))
        if code != SaslCode.OK:
            self._failed(
                Condition.UNAUTHORIZED_ACCESS,
                f"SASL authentication failed ({code.name.lower()}) with {mechanism}",
            )
            return
        conn._frame_type = FRAME_TYPE_AMQP
        conn._expect_header = True
        if not conn.server:
            conn._send_amqp_header()
            if conn._open_requested:
                conn._write_open()

    def _failed(self, condition: str, description: str) -> None:
        """End a connection that never got to AMQP frames (there is nothing to close with)."""
        conn = self.connection
        log.debug("[%s] handshake failed: %s", conn._label, description)
        conn._finish(error_of(condition, description), by_peer=False)

"""SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 names them), without channel binding.

This module is the message logic only, usable on its own: credentials
(:class:`ScramCredential`, :func:`derive_credential`), and one exchange on
each side (:class:`ScramClientExchange`, :class:`ScramServerExchange`).
The SASL mechanisms that carry it over AMQP are in :mod:`petrel.engine.sasl`.

The exchange, both sides::

    client-first  gs2-header n=USER,r=CNONCE
    server-first  r=CNONCE+SNONCE,s=SALT,i=ITERATIONS
    client-final  c=base64(gs2-header),r=CNONCE+SNONCE,p=PROOF
    server-final  v=SERVER-SIGNATURE            (or e=ERROR)

The server never holds a password: only the salt, the iteration count and
two keys derived from the salted password (``StoredKey`` checks the
client's proof; ``ServerKey`` signs the server's answer, which the client
checks, so a server that does not know the credentials cannot pretend to).

Every input is bounded before use (:data:`MAX_MESSAGE`, :data:`MAX_NONCE`,
the iteration range), and anything malformed raises :class:`ScramError`
naming the problem.  The channel-binding flag ``p=`` (the ``-PLUS``
mechanisms) is refused: ``n`` and ``y`` are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stringprep
import unicodedata
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ITERATIONS",
    "HASHES",
    "MAX_ITERATIONS",
    "MAX_MESSAGE",
    "MAX_NONCE",
    "MIN_ITERATIONS",
    "ScramClientExchange",
    "ScramCredential",
    "ScramError",
    "ScramServerExchange",
    "derive_credential",
    "fake_credential",
    "new_nonce",
    "saslprep",
]

#: The SCRAM mechanisms we speak and the hash each uses.
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
#: RFC 7677 asks for at least 4096 PBKDF2 iterations; fewer are refused on both sides.
MIN_ITERATIONS = 4096
#: What new credentials get (OWASP's figures for PBKDF2 are far higher still, but each
#: PLAIN login derives one on the server's event loop).
DEFAULT_ITERATIONS = 16384
#: The most a client agrees to compute: a hostile server must not make it spin for minutes.
MAX_ITERATIONS = 1_000_000
#: The longest SCRAM message either side accepts, in bytes (a user name, a nonce, a
#: salt and a proof fit in a few hundred; this bounds parsing and hashing work).
MAX_MESSAGE = 4096
#: The longest nonce accepted (each side's part; ours are 32 characters).
MAX_NONCE = 256
#: The longest salt accepted, in bytes once decoded.
MAX_SALT = 256


class ScramError(ValueError):
    """A SCRAM message is malformed or does not check out; the text says which and why."""


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What a server keeps of a password for one SCRAM hash (RFC 5802 section 3)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    """``H(HMAC(SaltedPassword, "Client Key"))``: checks the client's proof."""
    server_key: bytes
    """``HMAC(SaltedPassword, "Server Key")``: signs the server's final message."""


def _hmac(key: bytes, data: bytes, hash_name: str) -> bytes:
    return hmac.new(key, data, hash_name).digest()


def _hash_of(mechanism: str) -> str:
    try:
        return HASHES[mechanism.upper()]
    except KeyError:
        raise ScramError(f"{mechanism!r} is not a SCRAM mechanism we know") from None


def saslprep(text: str) -> str:
    """``text`` prepared by SASLprep (RFC 4013): mapped, NFKC-normalised and checked.

    Raises :class:`ScramError` for a prohibited or unassigned character or a
    bad mix of directions.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_a1,
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    for ch in prepared:
        if any(check(ch) for check in prohibited):
            raise ScramError(f"the character U+{ord(ch):04X} is not allowed (SASLprep)")
    right_to_left = any(stringprep.in_table_d1(ch) for ch in prepared)
    if right_to_left and (
        any(stringprep.in_table_d2(ch) for ch in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        raise ScramError("right-to-left text is mixed wrongly (SASLprep)")
    return prepared


def _password_bytes(password: str) -> bytes:
    # Like PostgreSQL: a password SASLprep refuses is used as it is, on both sides alike.
    try:
        return saslprep(password).encode("utf-8")
    except ScramError:
        return password.encode("utf-8")


def _salted_password(password: str, salt: bytes, iterations: int, hash_name: str) -> bytes:
    return hashlib.pbkdf2_hmac(hash_name, _password_bytes(password), salt, iterations)


def derive_credential(
    mechanism: str,
    password: str,
    *,
    salt: bytes | None = None,
    iterations: int = DEFAULT_ITERATIONS,
) -> ScramCredential:
    """The credential a server keeps for ``password`` under ``mechanism`` (``SCRAM-SHA-256``
    or ``SCRAM-SHA-512``), with a fresh random salt unless one is given."""
    hash_name = _hash_of(mechanism)
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ScramError(
            f"iterations must be in [{MIN_ITERATIONS}, {MAX_ITERATIONS}], got {iterations}"
        )
    salt = os.urandom(16) if salt is None else salt
    salted = _salted_password(password, salt, iterations, hash_name)
    client_key = _hmac(salted, b"Client Key", hash_name)
    return ScramCredential(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.new(hash_name, client_key).digest(),
        server_key=_hmac(salted, b"Server Key", hash_name),
    )


def fake_credential(
    mechanism: str, username: str, secret: bytes, iterations: int = DEFAULT_ITERATIONS
) -> ScramCredential:
    """A credential for a user that does not exist: the same salt every time for the same
    name (derived from ``secret``), and keys nothing can match.  A server answers with it so
    that an unknown user looks exactly like a wrong password."""
    hash_name = _hash_of(mechanism)
    salt = _hmac(secret, f"{mechanism.upper()}\0{username}".encode(), "sha256")[:16]
    size = hashlib.new(hash_name).digest_size
    return ScramCredential(salt, iterations, os.urandom(size), os.urandom(size))


def new_nonce() -> str:
    """A fresh random nonce: 32 printable characters."""
    return base64.b64encode(os.urandom(24)).decode("ascii")


# --- message syntax ---------------------------------------------------------------------


def _text(message: bytes, what: str) -> str:
    if len(message) > MAX_MESSAGE:
        raise ScramError(f"the {what} is {len(message)} bytes; at most {MAX_MESSAGE} are accepted")
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError(f"the {what} is not UTF-8") from None


def _attributes(text: str, what: str) -> list[tuple[str, str]]:
    """``a=value,b=value`` as pairs, in order; every attribute one letter."""
    pairs = []
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isascii() or not part[0].isalpha():
            raise ScramError(f"the {what} has a malformed attribute {part[:20]!r}")
        pairs.append((part[0], part[2:]))
    return pairs


def _expect(pairs: list[tuple[str, str]], index: int, key: str, what: str) -> str:
    if len(pairs) <= index or pairs[index][0] != key:
        raise ScramError(f"the {what} lacks its {key}= attribute")
    return pairs[index][1]


def _check_nonce(nonce: str, what: str) -> str:
    if not nonce:
        raise ScramError(f"the {what} has an empty nonce")
    if len(nonce) > 2 * MAX_NONCE:
        raise ScramError(f"the {what}'s nonce is longer than {2 * MAX_NONCE} characters")
    if any(not 0x21 <= ord(ch) <= 0x7E or ch == "," for ch in nonce):
        raise ScramError(f"the {what}'s nonce has a character outside printable ASCII")
    return nonce


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ScramError(f"the {what} is not valid base64") from None


def _escape_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape_name(name: str, what: str) -> str:
    out = []
    index = 0
    while index < len(name):
        ch = name[index]
        if ch == "=":
            code = name[index : index + 3]
            if code not in ("=2C", "=3D"):
                raise ScramError(f"the {what} has a bad escape {code!r} in a name")
            out.append("," if code == "=2C" else "=")
            index += 3
        else:
            out.append(ch)
            index += 1
    if not out:
        raise ScramError(f"the {what} has an empty name")
    return "".join(out)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# --- the client -------------------------------------------------------------------------


class ScramClientExchange:
    """The client's side of one exchange: :meth:`first`, :meth:`final`, :meth:`verify`."""

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        authzid: str | None = None,
        nonce: str | None = None,
    ) -> None:
        self.hash_name = _hash_of(mechanism)
        self.username = username
        self.password = password
        self.authzid = authzid
        self.nonce = _check_nonce(nonce or new_nonce(), "client nonce")
        authz = f"a={_escape_name(authzid)}" if authzid else ""
        self.gs2_header = f"n,{authz},"
        self.first_bare = f"n={_escape_name(username)},r={self.nonce}"
        self._server_signature: bytes | None = None
        self.verified = False

    def first(self) -> bytes:
        """The client-first message."""
        return (self.gs2_header + self.first_bare).encode("utf-8")

    def final(self, server_first: bytes) -> bytes:
        """The client-final message answering ``server_first``; raises :class:`ScramError`
        if it is malformed, changes our nonce, or asks for an iteration count out of range."""
        if self._server_signature is not None:
            raise ScramError("a second server-first message arrived")
        text = _text(server_first, "server-first message")
        pairs = _attributes(text, "server-first message")
        if pairs and pairs[0][0] == "m":
            raise ScramError("the server-first message asks for an extension we do not know")
        nonce = _check_nonce(_expect(pairs, 0, "r", "server-first message"), "server-first message")
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce):
            raise ScramError("the server-first message's nonce does not extend ours")
        salt = _b64(_expect(pairs, 1, "s", "server-first message"), "server's salt")
        if not 0 < len(salt) <= MAX_SALT:
            raise ScramError(f"the server's salt must be 1 to {MAX_SALT} bytes")
        count = _expect(pairs, 2, "i", "server-first message")
        if not count.isdigit() or len(count) > 9:
            raise ScramError(f"the server's iteration count {count[:12]!r} is not a number")
        iterations = int(count)
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise ScramError(
                f"the server asks for {iterations} iterations; we accept "
                f"{MIN_ITERATIONS} to {MAX_ITERATIONS}"
            )
        hash_name = self.hash_name
        salted = _salted_password(self.password, salt, iterations, hash_name)
        client_key = _hmac(salted, b"Client Key", hash_name)
        stored_key = hashlib.new(hash_name, client_key).digest()
        channel = base64.b64encode(self.gs2_header.encode("utf-8")).decode("ascii")
        without_proof = f"c={channel},r={nonce}"
        auth_message = f"{self.first_bare},{text},{without_proof}".encode()
        proof = _xor(client_key, _hmac(stored_key, auth_message, hash_name))
        server_key = _hmac(salted, b"Server Key", hash_name)
        self._server_signature = _hmac(server_key, auth_message, hash_name)
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode("ascii")

    def verify(self, server_final: bytes) -> None:
        """Check the server-final message; raises :class:`ScramError` unless it carries the
        signature only a server knowing our credentials can make."""
        if self._server_signature is None:
            raise ScramError("the server-final message came before the server-first")
        text = _text(server_final, "server-final message")
        pairs = _attributes(text, "server-final message")
        if pairs and pairs[0][0] == "e":
            raise ScramError(f"the server refused: {pairs[0][1][:100]}")
        signature = _b64(_expect(pairs, 0, "v", "server-final message"), "server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            raise ScramError(
                "the server's signature is wrong: it does not know our credentials "
                "(an impostor, or a server with another password for us)"
            )
        self.verified = True


# --- the server -------------------------------------------------------------------------


class ScramServerExchange:
    """The server's side of one exchange.

    :meth:`first` parses the client-first message and names the user, whose
    credential the caller then looks up (a fake one for an unknown user, see
    :func:`fake_credential`); :meth:`challenge` makes the server-first
    message; :meth:`final` checks the client's proof and returns the
    server-final message.
    """

    def __init__(self, mechanism: str, *, nonce: str | None = None) -> None:
        self.mechanism = mechanism.upper()
        self.hash_name = _hash_of(mechanism)
        self._nonce_part = _check_nonce(nonce or new_nonce(), "server nonce")
        self.username: str | None = None
        self.authzid: str | None = None
        self._gs2_header = ""
        self._first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._credential: ScramCredential | None = None

    def first(self, client_first: bytes) -> str:
        """Parse the client-first message; the user name it gives."""
        text = _text(client_first, "client-first message")
        flag, _, rest = text.partition(",")
        if flag.startswith("p="):
            raise ScramError(
                f"the client asks for channel binding ({self.mechanism}-PLUS), "
                "which this server does not offer"
            )
        if flag not in ("n", "y"):
            raise ScramError("the client-first message does not start with n, y or p=")
        authz, comma, bare = rest.partition(",")
        if not comma:
            raise ScramError("the client-first message has no gs2 header")
        if authz:
            if not authz.startswith("a="):
                raise ScramError("the client-first message has a malformed authzid")
            self.authzid = _unescape_name(authz[2:], "client-first message")
        pairs = _attributes(bare, "client-first message")
        if pairs and pairs[0][0] == "m":
            raise ScramError("the client-first message asks for an extension we do not know")
        self.username = _unescape_name(
            _expect(pairs, 0, "n", "client-first message"), "client-first message"
        )
        client_nonce = _expect(pairs, 1, "r", "client-first message")
        if len(client_nonce) > MAX_NONCE:
            raise ScramError(f"the client's nonce is longer than {MAX_NONCE} characters")
        self._nonce = _check_nonce(client_nonce, "client-first message") + self._nonce_part
        self._gs2_header = f"{flag},{authz},"
        self._first_bare = bare
        return self.username

    def challenge(self, credential: ScramCredential) -> bytes:
        """The server-first message, for the user's ``credential``."""
        self._credential = credential
        salt = base64.b64encode(credential.salt).decode("ascii")
        self._server_first = f"r={self._nonce},s={salt},i={credential.iterations}"
        return self._server_first.encode("ascii")

    def final(self, client_final: bytes) -> bytes:
        """Check the client-final message; the server-final message when the proof is right.
        Raises :class:`ScramError` when it is malformed or the proof is wrong (the message
        then says which, for the server's log, never the client)."""
        credential = self._credential
        if credential is None:
            raise ScramError("the client-final message came before the server-first")
        text = _text(client_final, "client-final message")
        without_proof, sep, proof_text = text.rpartition(",p=")
        if not sep:
            raise ScramError("the client-final message has no proof (p=)")
        pairs = _attributes(without_proof, "client-final message")
        channel = _b64(_expect(pairs, 0, "c", "client-final message"), "channel binding")
        if channel != self._gs2_header.encode("utf-8"):
            raise ScramError("the client-final message's channel binding differs from its header")
        if _expect(pairs, 1, "r", "client-final message") != self._nonce:
            raise ScramError("the client-final message's nonce is not the one agreed")
        proof = _b64(proof_text, "client proof")
        size = hashlib.new(self.hash_name).digest_size
        if len(proof) != size:
            raise ScramError(f"the client proof is {len(proof)} bytes, not {size}")
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(credential.stored_key, auth_message, self.hash_name)
        client_key = _xor(proof, signature)
        if not hmac.compare_digest(
            hashlib.new(self.hash_name, client_key).digest(), credential.stored_key
        ):
            raise ScramError("wrong password (the client's proof does not match)")
        server_signature = _hmac(credential.server_key, auth_message, self.hash_name)
        return b"v=" + base64.b64encode(server_signature)

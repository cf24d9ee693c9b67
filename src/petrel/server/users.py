"""Who may authenticate: the users file, the config's inline ``[[users]]``, and their checks.

The users file is TOML, like the server's config, so an operator can read
it, diff it and keep comments at its top; ``petrel user`` and the
``petrel.user`` management entity edit it.  It holds no password: each user
has a SCRAM credential per hash, in the text form PostgreSQL uses for
``rolpassword`` (``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``,
base64), so a stolen file does not give the passwords away::

    # Petrel users (edit with `petrel user`): SCRAM credentials, no passwords.
    version = 1
    secret = "8Yb2...="          # the key unknown users' fake SCRAM salts come from

    [[users]]
    name = "alice"
    admin = true
    groups = ["ops"]
    scram_sha_256 = "SCRAM-SHA-256$16384:ZmFrZQ==$...:..."
    scram_sha_512 = "SCRAM-SHA-512$16384:ZmFrZQ==$...:..."

It is written atomically (a temporary file in the same directory, flushed
to disk, then renamed over the old one, mode 0600), under an exclusive lock
(``PATH.lock``) so that the CLI and a server's management do not overwrite
each other's changes.

:class:`UserDirectory` is what a server consults: SCRAM credentials, PLAIN
checked against those credentials (derived and compared in constant time;
an unknown user costs a derivation too), the admin flag and the groups.
It reloads the file when it changes (:meth:`UserDirectory.refresh`: one
``stat`` per call, made as each connection arrives); a file that no longer
parses keeps the users it had, and the log says why.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..engine.scram import (
    DEFAULT_ITERATIONS,
    HASHES,
    MAX_ITERATIONS,
    MAX_SALT,
    MIN_ITERATIONS,
    ScramCredential,
    ScramError,
    derive_credential,
    fake_credential,
)
from .config import ConfigError, UserSettings

__all__ = [
    "MECHANISMS",
    "User",
    "UserDirectory",
    "UsersFile",
    "UsersFileError",
    "edit_users_file",
    "format_credential",
    "make_user",
    "parse_credential",
    "read_users_file",
    "write_users_file",
]

log = logging.getLogger("petrel.server")

#: The SCRAM mechanisms every user has a credential for, and their keys in the file.
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_KEYS = {"SCRAM-SHA-256": "scram_sha_256", "SCRAM-SHA-512": "scram_sha_512"}
#: The file format's version; a newer one is refused rather than half understood.
VERSION = 1
#: A user or group name: printable, no control characters, at most 255 characters.
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")


class UsersFileError(ConfigError):
    """The users file cannot be read, parsed or written; one line naming the problem."""


@dataclass(frozen=True, slots=True)
class User:
    """One user: a SCRAM credential per mechanism, groups, and whether it may manage."""

    name: str
    credentials: Mapping[str, ScramCredential]
    groups: frozenset[str] = frozenset()
    admin: bool = False
    """May use the management node (``petrel stat``, ``petrel manage``)."""
    source: Literal["file", "config"] = "file"
    """``file``: the users file (editable); ``config``: an inline ``[[users]]`` entry."""


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsersFileError(f"{what} {name!r}: 1 to 255 characters, no control characters")
    return name


def make_user(
    name: str,
    password: str,
    *,
    groups: Iterable[str] = (),
    admin: bool = False,
    iterations: int = DEFAULT_ITERATIONS,
    source: Literal["file", "config"] = "file",
) -> User:
    """A user with fresh credentials (a new random salt per hash) for ``password``."""
    _check_name(name, "user name")
    credentials = {m: derive_credential(m, password, iterations=iterations) for m in MECHANISMS}
    return User(
        name,
        credentials,
        frozenset(_check_name(g, "group") for g in groups),
        admin,
        source,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def format_credential(mechanism: str, credential: ScramCredential) -> str:
    """``credential`` as text: ``MECHANISM$ITERATIONS:SALT$STOREDKEY:SERVERKEY``."""
    return (
        f"{mechanism}${credential.iterations}:{_b64(credential.salt)}"
        f"${_b64(credential.stored_key)}:{_b64(credential.server_key)}"
    )


def parse_credential(text: str, mechanism: str) -> ScramCredential:
    """The credential :func:`format_credential` wrote; raises ``ValueError`` saying what is
    wrong with it (never quoting it)."""
    parts = re.fullmatch(r"([A-Z0-9-]+)\$(\d{1,9}):([^$:]+)\$([^$:]+):([^$:]+)", text.strip())
    if parts is None:
        raise ValueError("not MECHANISM$ITERATIONS:SALT$STOREDKEY:SERVERKEY")
    if parts[1] != mechanism:
        raise ValueError(f"a {parts[1]} credential where {mechanism} belongs")
    iterations = int(parts[2])
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in [{MIN_ITERATIONS}, {MAX_ITERATIONS}]")
    try:
        salt, stored, server = (base64.b64decode(p, validate=True) for p in parts.groups()[2:])
    except binascii.Error:
        raise ValueError("a part is not valid base64") from None
    size = hashlib.new(HASHES[mechanism]).digest_size
    if not 0 < len(salt) <= MAX_SALT or len(stored) != size or len(server) != size:
        raise ValueError(f"the salt or a key has the wrong length (keys are {size} bytes)")
    return ScramCredential(salt, iterations, stored, server)


# --- the file -----------------------------------------------------------------------------


@dataclass(slots=True)
class UsersFile:
    """The users file's content: its fake-salt secret and its users by name."""

    secret: bytes = field(default_factory=lambda: os.urandom(32))
    users: dict[str, User] = field(default_factory=dict)


def read_users_file(path: str | Path) -> UsersFile:
    """Parse the users file; raises :class:`UsersFileError` naming the file, the entry and
    the problem."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UsersFileError(f"{path}: no such users file") from None
    except OSError as exc:
        raise UsersFileError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _parse(data)
    except (ValueError, TypeError) as exc:
        raise UsersFileError(f"{path}: {exc}") from None


def _parse(data: dict[str, Any]) -> UsersFile:
    unknown = sorted(set(data) - {"version", "secret", "users"})
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}")
    if data.get("version", VERSION) != VERSION:
        raise ValueError(f"version {data['version']!r}: this Petrel reads version {VERSION}")
    secret_text = data.get("secret")
    secret = base64.b64decode(secret_text, validate=True) if secret_text else os.urandom(32)
    entries = data.get("users", [])
    if not isinstance(entries, list):
        raise ValueError("users must be an array of tables ([[users]])")
    users: dict[str, User] = {}
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"users[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")
        try:
            user = _parse_user(entry)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        if user.name in users:
            raise ValueError(f"{where}: user {user.name!r} appears twice")
        users[user.name] = user
    return UsersFile(secret, users)


def _parse_user(entry: Any) -> User:
    if not isinstance(entry, dict):
        raise ValueError("not a table")
    unknown = sorted(set(entry) - {"name", "admin", "groups", *_KEYS.values()})
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}")
    if "name" not in entry:
        raise ValueError("no name")
    name = _check_name(entry["name"], "user name")
    admin = entry.get("admin", False)
    groups = entry.get("groups", [])
    if not isinstance(admin, bool):
        raise ValueError("admin must be true or false")
    if not isinstance(groups, list):
        raise ValueError("groups must be a list of names")
    credentials = {}
    for mechanism, key in _KEYS.items():
        if key not in entry:
            raise ValueError(f"no {key} credential")
        if not isinstance(entry[key], str):
            raise ValueError(f"{key} must be a string")
        try:
            credentials[mechanism] = parse_credential(entry[key], mechanism)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return User(name, credentials, frozenset(_check_name(g, "group") for g in groups), admin)


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _render(content: UsersFile) -> str:
    lines = [
        "# Petrel users: SCRAM credentials, never passwords.  Edit with `petrel user` (or",
        "# management's petrel.user); the server reloads this file when it changes.",
        f"version = {VERSION}",
        f"secret = {_toml_string(_b64(content.secret))}",
    ]
    for user in sorted(content.users.values(), key=lambda u: u.name):
        lines += ["", "[[users]]", f"name = {_toml_string(user.name)}"]
        lines.append(f"admin = {'true' if user.admin else 'false'}")
        lines.append(f"groups = [{', '.join(_toml_string(g) for g in sorted(user.groups))}]")
        for mechanism, key in _KEYS.items():
            lines.append(
                f"{key} = {_toml_string(format_credential(mechanism, user.credentials[mechanism]))}"
            )
    return "\n".join(lines) + "\n"


def write_users_file(path: str | Path, content: UsersFile) -> None:
    """Write ``content`` to ``path`` atomically (readers see the old file or the new one,
    never half of one), readable by its owner only."""
    path = Path(path)
    text = _render(content)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise UsersFileError(f"{path}: cannot write: {exc.strerror or exc}") from None
    with contextlib.suppress(OSError):  # the rename is durable once the directory is
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@contextlib.contextmanager
def edit_users_file(path: str | Path, *, create: bool = False) -> Iterator[UsersFile]:
    """Read the users file, let the block change it, write it back: all under the file's
    lock.  ``create``: start from an empty file (with a new secret) if there is none.
    Nothing is written if the block raises."""
    path = Path(path)
    try:
        lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UsersFileError(f"{path}: cannot lock: {exc.strerror or exc}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        content = UsersFile() if create and not path.exists() else read_users_file(path)
        yield content
        write_users_file(path, content)
    finally:
        os.close(lock)  # closing releases the lock


# --- what a server consults ------------------------------------------------------------------


class UserDirectory:
    """The users a server knows: its config's inline ``[[users]]`` (their passwords turned
    into credentials at load) and the users file, if it has one.

    For the AUTHZ side: :meth:`groups_of` and :meth:`is_admin`.  For SASL:
    :meth:`scram_credential` and :meth:`check_password`.  :meth:`refresh`
    picks up a changed file; :meth:`reload` forces a read (SIGHUP).
    """

    def __init__(self, inline: Sequence[UserSettings] = (), path: str | Path | None = None) -> None:
        # Inline passwords sit in the config in clear already: more iterations would
        # protect nothing and slow every start.
        self._inline = {
            u.name: make_user(
                u.name,
                u.password,
                groups=u.groups,
                admin=u.admin,
                iterations=MIN_ITERATIONS,
                source="config",
            )
            for u in inline
        }
        self.path = Path(path) if path is not None else None
        self._stamp: tuple[int, int, int] | None = None
        self._file = UsersFile(secret=self._inline_secret(inline), users={})
        self._users: dict[str, User] = dict(self._inline)
        if self.path is not None:
            self._load(self._stat())

    @staticmethod
    def _inline_secret(inline: Sequence[UserSettings]) -> bytes:
        # Stable across restarts, and unknown to whoever does not know the passwords.
        digest = hashlib.sha256(b"petrel fake-salt key\0")
        for user in sorted(inline, key=lambda u: u.name):
            digest.update(f"{user.name}\0{user.password}\0".encode())
        return digest.digest()

    # --- loading ---------------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _load(self, stamp: tuple[int, int, int] | None) -> None:
        assert self.path is not None
        content = read_users_file(self.path)
        both = sorted(set(content.users) & set(self._inline))
        if both:
            raise UsersFileError(
                f"{self.path}: user {both[0]!r} is also in the config's [[users]]; keep one"
            )
        self._file = content
        self._users = {**self._inline, **content.users}
        self._stamp = stamp

    def refresh(self) -> bool:
        """Reload the users file if it changed since it was read (one ``stat``); whether
        the users changed.  A file that no longer reads keeps the old users; the log says
        why, once per change of the file."""
        if self.path is None:
            return False
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        return self._reload(stamp)

    def reload(self) -> bool:
        """Read the users file again whatever its time stamp (SIGHUP); whether it worked."""
        return self.path is not None and self._reload(self._stat())

    def _reload(self, stamp: tuple[int, int, int] | None) -> bool:
        try:
            self._load(stamp)
        except UsersFileError as exc:
            self._stamp = stamp  # do not retry (and log) until the file changes again
            log.error("keeping the %d users loaded before: %s", len(self._users), exc)
            return False
        log.info("users file %s reloaded: %d users", self.path, len(self._users))
        return True

    # --- lookups ---------------------------------------------------------------------------

    @property
    def users(self) -> Mapping[str, User]:
        """Every user by name."""
        return self._users

    @property
    def active(self) -> bool:
        """Whether password mechanisms make sense: there are users, or a file to add them."""
        return bool(self._users) or self.path is not None

    @property
    def secret(self) -> bytes:
        """The key unknown users' fake SCRAM salts derive from."""
        return self._file.secret

    @property
    def iterations(self) -> int:
        """The iteration count most users have: what an unknown user is shown."""
        counts = Counter(c.iterations for u in self._users.values() for c in u.credentials.values())
        return counts.most_common(1)[0][0] if counts else DEFAULT_ITERATIONS

    def scram_credential(self, username: str, mechanism: str) -> ScramCredential | None:
        """``username`` 's credential for ``mechanism``, or ``None`` for an unknown user."""
        user = self._users.get(username)
        return None if user is None else user.credentials.get(mechanism.upper())

    def check_password(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username`` 's (PLAIN): the SCRAM-SHA-256 credential is
        derived again with its salt and compared in constant time.  An unknown user costs
        the same derivation, so timing does not tell who exists."""
        user = self._users.get(username)
        mechanism = MECHANISMS[0]
        known = user.credentials[mechanism] if user is not None else None
        target = known or fake_credential(mechanism, username, self.secret, self.iterations)
        try:
            derived = derive_credential(
                mechanism, password, salt=target.salt, iterations=target.iterations
            )
        except ScramError:
            return False
        return hmac.compare_digest(derived.stored_key, target.stored_key) and known is not None

    def groups_of(self, username: str) -> frozenset[str]:
        """The groups ``username`` belongs to (empty for an unknown user)."""
        user = self._users.get(username)
        return user.groups if user is not None else frozenset()

    def is_admin(self, username: str) -> bool:
        """Whether ``username`` may manage."""
        user = self._users.get(username)
        return user is not None and user.admin

    # --- editing (management) --------------------------------------------------------------

    def _editable(self, name: str) -> None:
        if self.path is None:
            raise UsersFileError("this server has no users_file to keep users in")
        if name in self._inline:
            raise UsersFileError(
                f"user {name!r} is in the config file's [[users]]: change it there"
            )

    def add(
        self, name: str, password: str, *, groups: Iterable[str] = (), admin: bool = False
    ) -> User:
        """Add a user to the users file (creating it if need be); raises
        :class:`UsersFileError` if it exists or cannot be kept."""
        self._editable(name)
        assert self.path is not None
        user = make_user(name, password, groups=groups, admin=admin)
        with edit_users_file(self.path, create=True) as content:
            if name in content.users:
                raise UsersFileError(f"user {name!r} exists")
            content.users[name] = user
        self._reload(self._stat())
        return user

    def update(
        self,
        name: str,
        *,
        password: str | None = None,
        groups: Iterable[str] | None = None,
        admin: bool | None = None,
    ) -> User:
        """Change a user of the users file: a new password (new salts too), groups, the
        admin flag."""
        self._editable(name)
        assert self.path is not None
        with edit_users_file(self.path) as content:
            user = content.users.get(name)
            if user is None:
                raise UsersFileError(f"no user {name!r} in {self.path}")
            if password is not None:
                fresh = make_user(name, password)
                user = replace(user, credentials=fresh.credentials)
            if groups is not None:
                user = replace(user, groups=frozenset(_check_name(g, "group") for g in groups))
            if admin is not None:
                user = replace(user, admin=admin)
            content.users[name] = user
        self._reload(self._stat())
        return user

    def delete(self, name: str) -> None:
        """Remove a user from the users file."""
        self._editable(name)
        assert self.path is not None
        with edit_users_file(self.path) as content:
            if content.users.pop(name, None) is None:
                raise UsersFileError(f"no user {name!r} in {self.path}")
        self._reload(self._stat())

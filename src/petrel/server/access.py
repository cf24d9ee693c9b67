"""Authorisation: who may do what to which address, in which virtual host, within which limits.

The ``[access]`` table of a server's config (:class:`AccessSettings`) is compiled
once per server into an :class:`Access`; each connection that opens gets a
:class:`ConnectionAccess` from it, which answers every question the attach path
and the anonymous relay ask, caching its decisions per address.  Without an
``[access]`` table a server has no :class:`Access` and behaves as it always did.

- **Virtual hosts.**  The open's ``hostname`` picks a vhost (``[[access.vhosts]]``);
  an open naming none, or one no vhost has, gets ``default_vhost`` (``$default``: the
  rules in ``[access]`` itself), or is refused with ``amqp:not-found`` when
  ``default_vhost = ""`` (what Qpid Dispatch does with its ``defaultVhost``).  Each
  vhost admits its own users, has its own rules and limits, and its own address
  space: the server files a vhost's addresses under ``$vhost/<hostname>/``, which no
  client may name itself.
- **Rules.**  A rule gives ``rights`` on ``addresses`` (patterns: ``*`` is one
  dot-separated segment, ``#`` any number of them) to ``who`` (user names,
  ``@group``, ``$anonymous``, ``*`` for everyone).  Whatever no rule gives is refused
  with ``amqp:unauthorized-access`` naming the address and the right, and one line
  on the ``petrel.audit`` logger.
- **Limits.**  Every ``[[...limits]]`` entry whose ``who`` and ``hosts`` match a
  connection applies to it; where several set the same limit the smallest wins.

Dynamic nodes: attaching one (a temporary reply queue) needs no right, and its
address is a capability: anyone who was given it (as a ``reply-to``) may send to
it, in any vhost, while only the connection that made it may receive from it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import AmqpError, Condition
from ..spec import DistributionMode

if TYPE_CHECKING:
    from ..engine import Link

__all__ = [
    "ANONYMOUS",
    "DEFAULT_VHOST",
    "MANAGEMENT",
    "RIGHTS",
    "VHOST_PREFIX",
    "Access",
    "AccessLimit",
    "AccessRule",
    "AccessSettings",
    "ConnectionAccess",
    "GroupSettings",
    "VhostSettings",
    "compile_patterns",
]

#: One line per access decision refused (INFO) or first allowed (DEBUG) on a connection.
audit = logging.getLogger("petrel.audit")

Right = Literal["send", "receive", "browse", "create", "manage"]
RIGHTS: tuple[Right, ...] = ("send", "receive", "browse", "create", "manage")
#: The vhost of ``[access]`` itself, and the name a ``who`` list gives anonymous clients.
DEFAULT_VHOST = "$default"
ANONYMOUS = "$anonymous"
#: Where a vhost's addresses live inside the server: ``$vhost/<hostname>/<address>``.
VHOST_PREFIX = "$vhost/"
MANAGEMENT = "$management"
#: Decisions a connection remembers before it starts again (a bound, not a tuning knob).
CACHE_SIZE = 4096


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_who(names: list[str]) -> list[str]:
    for name in names:
        if not name or name == "@":
            raise ValueError("who holds user names, @group, $anonymous or *; not an empty name")
    return names


class AccessRule(_Model):
    """``rights`` on the ``addresses`` matching a pattern, for ``who``."""

    who: list[str] = Field(default_factory=lambda: ["*"])
    """User names, ``@group``, ``$anonymous`` (clients without SASL or with ANONYMOUS),
    ``*`` (everyone)."""
    addresses: list[str] = Field(min_length=1)
    """Patterns: ``*`` matches one dot-separated segment, ``#`` any number (none too)."""
    rights: list[Right] = Field(min_length=1)
    """``send``, ``receive``, ``browse`` (``receive`` includes it), ``create``, ``manage``."""

    @field_validator("who")
    @classmethod
    def _who(cls, value: list[str]) -> list[str]:
        return _check_who(value)

    @field_validator("addresses")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        if any(not pattern for pattern in value):
            raise ValueError("an address pattern is never empty (use # for every address)")
        return value


class AccessLimit(_Model):
    """Limits for the connections of ``who`` from ``hosts``."""

    who: list[str] = Field(default_factory=lambda: ["*"])
    hosts: list[str] = Field(default_factory=list)
    """Source networks (``10.0.0.0/8``, ``127.0.0.1``, ``::1``); empty: from anywhere."""
    max_connections: int | None = Field(default=None, ge=0)
    """The connections this entry matches, all together."""
    max_connections_per_user: int | None = Field(default=None, ge=0)
    """Each user it matches (anonymous clients count as one user)."""
    max_connections_per_host: int | None = Field(default=None, ge=0)
    """Each source host (IP address) it matches."""
    max_sessions: int | None = Field(default=None, ge=1)
    """Per connection."""
    max_links: int | None = Field(default=None, ge=1)
    """Per connection."""
    max_message_size: int | None = Field(default=None, ge=1)
    """Bytes per message; a bigger one ends its link with ``amqp:link:message-size-exceeded``."""
    max_unsettled: int | None = Field(default=None, ge=1)
    """Per link: a sending client is given credit only while its unsettled deliveries
    and its credit stay within it; a receiving client is sent no more while that many
    of its deliveries wait for its outcome."""

    @field_validator("who")
    @classmethod
    def _who(cls, value: list[str]) -> list[str]:
        return _check_who(value)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            try:
                ipaddress.ip_network(host, strict=False)
            except ValueError:
                raise ValueError(f"{host!r} is not an IP address or network") from None
        return value


class GroupSettings(_Model):
    """A group of users, named ``@name`` in ``who`` lists."""

    name: str = Field(min_length=1)
    members: list[str] = Field(default_factory=list)


class VhostSettings(_Model):
    """A virtual host: the connections whose open names ``hostname``."""

    hostname: str = Field(min_length=1)
    admit: list[str] = Field(default_factory=lambda: ["*"])
    """Who may open a connection here (a ``who`` list)."""
    rules: list[AccessRule] = Field(default_factory=list)
    limits: list[AccessLimit] = Field(default_factory=list)

    @field_validator("admit")
    @classmethod
    def _who(cls, value: list[str]) -> list[str]:
        return _check_who(value)


class AccessSettings(_Model):
    """The ``[access]`` table: its own ``admit``, ``rules`` and ``limits`` are the default
    vhost's (``$default``); ``[[access.vhosts]]`` are the others."""

    default_vhost: str = DEFAULT_VHOST
    """The vhost of an open that names no hostname or one no vhost has; ``""``: refuse
    such opens with ``amqp:not-found``."""
    admit: list[str] = Field(default_factory=lambda: ["*"])
    rules: list[AccessRule] = Field(default_factory=list)
    limits: list[AccessLimit] = Field(default_factory=list)
    groups: list[GroupSettings] = Field(default_factory=list)
    vhosts: list[VhostSettings] = Field(default_factory=list)

    @field_validator("admit")
    @classmethod
    def _who(cls, value: list[str]) -> list[str]:
        return _check_who(value)

    @model_validator(mode="after")
    def _check(self) -> AccessSettings:
        names: set[str] = set()
        for vhost in self.vhosts:
            name = vhost.hostname.lower()
            if name == DEFAULT_VHOST:
                raise ValueError(
                    "the $default vhost's admit, rules and limits go in [access] itself"
                )
            if name in names:
                raise ValueError(f"vhost {vhost.hostname!r} is declared twice")
            names.add(name)
        default = self.default_vhost.lower()
        if default and default != DEFAULT_VHOST and default not in names:
            raise ValueError(
                f"default_vhost {self.default_vhost!r} is no [[access.vhosts]] hostname "
                '(nor $default; "" refuses unknown hostnames)'
            )
        groups = [group.name for group in self.groups]
        for group in groups:
            if groups.count(group) > 1:
                raise ValueError(f"group {group!r} is declared twice")
        return self


# --- compiling ----------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> str:
    """A regular expression for ``pattern``, to be matched against ``address + "."``: each
    segment is followed by its dot, so ``#`` (any number of segments) is a repetition."""
    parts = []
    for segment in pattern.split("."):
        if segment == "#":
            parts.append(r"(?:[^.]*\.)*")
        elif segment == "*":
            parts.append(r"[^.]*\.")
        else:
            parts.append(re.escape(segment) + r"\.")
    return "".join(parts)


def compile_patterns(patterns: Iterable[str]) -> Callable[[str], bool] | None:
    """One matcher for all of ``patterns`` (``None`` when there are none): a function
    telling whether an address matches any of them."""
    unique = sorted(set(patterns))
    if not unique:
        return None
    if "#" in unique:
        return lambda address: True
    regex = re.compile("|".join(f"(?:{_pattern_regex(p)})" for p in unique), re.DOTALL)
    fullmatch = regex.fullmatch
    return lambda address: fullmatch(address + ".") is not None


class _Who:
    """A compiled ``who`` list."""

    __slots__ = ("anonymous", "everyone", "groups", "users")

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        self.everyone = "*" in names
        self.anonymous = ANONYMOUS in names
        self.groups = frozenset(n[1:] for n in names if n.startswith("@"))
        self.users = frozenset(n for n in names if n not in ("*", ANONYMOUS) and n[0] != "@")

    def matches(self, user: str | None, groups: frozenset[str]) -> bool:
        if self.everyone:
            return True
        if user is None:
            return self.anonymous
        return user in self.users or not self.groups.isdisjoint(groups)


class _Limit:
    __slots__ = ("index", "networks", "settings", "who")

    def __init__(self, index: int, settings: AccessLimit) -> None:
        self.index = index
        self.settings = settings
        self.who = _Who(settings.who)
        self.networks = [ipaddress.ip_network(h, strict=False) for h in settings.hosts]

    def matches(self, user: str | None, groups: frozenset[str], host: str) -> bool:
        if not self.who.matches(user, groups):
            return False
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class _Vhost:
    """One vhost, compiled."""

    __slots__ = ("admit", "limits", "name", "prefix", "rules")

    def __init__(
        self,
        name: str,
        prefix: str,
        admit: list[str],
        rules: list[AccessRule],
        limits: list[AccessLimit],
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.admit = _Who(admit)
        self.rules = [(_Who(rule.who), rule) for rule in rules]
        self.limits = [_Limit(i, limit) for i, limit in enumerate(limits)]


# --- the server's and the connection's ----------------------------------------------------------


class Access:
    """A server's compiled access settings (see the module docstring).

    ``groups_of(user)`` adds the groups a user belongs to elsewhere (a users file)
    to those of ``[[access.groups]]``.  ``is_reply_address(address)`` tells the
    server's dynamic-node addresses, to which anyone may send.
    """

    def __init__(
        self,
        settings: AccessSettings,
        *,
        groups_of: Callable[[str], Iterable[str]] | None = None,
        is_reply_address: Callable[[str], bool] = lambda address: False,
    ) -> None:
        self.settings = settings
        self.groups_of = groups_of
        self.is_reply_address = is_reply_address
        self._members: dict[str, set[str]] = {}
        for group in settings.groups:
            for member in group.members:
                self._members.setdefault(member, set()).add(group.name)
        default = _Vhost(DEFAULT_VHOST, "", settings.admit, settings.rules, settings.limits)
        self.vhosts: dict[str, _Vhost] = {DEFAULT_VHOST: default}
        for vhost in settings.vhosts:
            name = vhost.hostname.lower()
            self.vhosts[name] = _Vhost(
                vhost.hostname, f"{VHOST_PREFIX}{name}/", vhost.admit, vhost.rules, vhost.limits
            )
        self.default = self.vhosts.get(settings.default_vhost.lower())
        #: Live connections per limit key: ``(vhost, entry, kind, who)``.
        self.counts: dict[tuple[str, int, str, str], int] = {}

    def groups(self, user: str | None) -> frozenset[str]:
        """The groups ``user`` belongs to (none for an anonymous client)."""
        if user is None:
            return frozenset()
        found = set(self._members.get(user, ()))
        if self.groups_of is not None:
            found.update(self.groups_of(user))
        return frozenset(found)

    def open(self, user: str | None, host: str, hostname: str | None) -> ConnectionAccess:
        """The access of a connection that opened as ``user`` (``None``: anonymous) from
        ``host`` asking for vhost ``hostname``; raises the :class:`AmqpError` its open is
        refused with.  The caller calls :meth:`ConnectionAccess.release` when it ends."""
        vhost = self.vhosts.get(hostname.lower()) if hostname else None
        if vhost is None:
            vhost = self.default
        who = "anonymous" if user is None else repr(user)
        if vhost is None:
            audit.info("%s from %s: refused: no vhost %r", who, host, hostname)
            raise AmqpError(f"no virtual host {hostname!r} here", condition=Condition.NOT_FOUND)
        groups = self.groups(user)
        if not vhost.admit.matches(user, groups):
            audit.info("%s from %s: refused: not admitted to vhost %s", who, host, vhost.name)
            raise AmqpError(
                f"user {who} may not connect to virtual host {vhost.name!r}",
                condition=Condition.UNAUTHORIZED_ACCESS,
            )
        matched = [limit for limit in vhost.limits if limit.matches(user, groups, host)]
        keys = []
        for limit in matched:
            settings = limit.settings
            for kind, bound, key in (
                ("connections", settings.max_connections, ""),
                ("connections per user", settings.max_connections_per_user, user or ""),
                ("connections per host", settings.max_connections_per_host, host),
            ):
                if bound is None:
                    continue
                counted = (vhost.name, limit.index, kind, key)
                if self.counts.get(counted, 0) >= bound:
                    audit.info(
                        "%s from %s: refused: vhost %s allows %d %s", who, host, vhost.name,
                        bound, kind,
                    )  # fmt: skip
                    raise AmqpError(
                        f"virtual host {vhost.name!r} allows {bound} {kind} "
                        f"(user {who}, host {host})",
                        condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                    )
                keys.append(counted)
        for counted in keys:
            self.counts[counted] = self.counts.get(counted, 0) + 1
        return ConnectionAccess(self, vhost, user, groups, host, matched, keys)

    def release(self, keys: list[tuple[str, int, str, str]]) -> None:
        for counted in keys:
            left = self.counts.get(counted, 0) - 1
            if left > 0:
                self.counts[counted] = left
            else:
                self.counts.pop(counted, None)


def _smallest(limits: list[_Limit], name: str) -> int | None:
    values = [getattr(limit.settings, name) for limit in limits]
    present = [v for v in values if v is not None]
    return min(present) if present else None


class ConnectionAccess:
    """What one connection may do (see the module docstring); made by :meth:`Access.open`."""

    __slots__ = (
        "_access",
        "_cache",
        "_granted",
        "_keys",
        "_relayed",
        "host",
        "max_links",
        "max_message_size",
        "max_sessions",
        "max_unsettled",
        "prefix",
        "user",
        "vhost",
    )

    def __init__(
        self,
        access: Access,
        vhost: _Vhost,
        user: str | None,
        groups: frozenset[str],
        host: str,
        limits: list[_Limit],
        keys: list[tuple[str, int, str, str]],
    ) -> None:
        self._access = access
        self._keys = keys
        self.user = user
        self.host = host
        self.vhost = vhost.name
        #: Put before an address to find it in the server ("" in the default vhost).
        self.prefix = vhost.prefix
        patterns: dict[str, list[str]] = {right: [] for right in RIGHTS}
        for who, rule in vhost.rules:
            if who.matches(user, groups):
                for right in rule.rights:
                    patterns[right].extend(rule.addresses)
        patterns["browse"].extend(patterns["receive"])
        self._granted = {right: compile_patterns(found) for right, found in patterns.items()}
        self._cache: dict[tuple[str, str], bool] = {}
        #: The relay's allowed addresses and where each goes: one lookup per message.
        self._relayed: dict[str, str] = {}
        self.max_sessions = _smallest(limits, "max_sessions")
        self.max_links = _smallest(limits, "max_links")
        self.max_message_size = _smallest(limits, "max_message_size")
        self.max_unsettled = _smallest(limits, "max_unsettled")

    def release(self) -> None:
        """The connection is gone: it no longer counts against the connection limits."""
        keys, self._keys = self._keys, []
        self._access.release(keys)

    # --- decisions ------------------------------------------------------------------------------

    def allowed(self, address: str, right: str) -> bool:
        """Whether this connection has ``right`` on ``address`` (as the client names it)."""
        key = (address, right)
        decision = self._cache.get(key)
        if decision is None:
            decision = self._decide(address, right)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = decision
            self._audit(address, right, decision)
        return decision

    def _decide(self, address: str, right: str) -> bool:
        if address.startswith(VHOST_PREFIX):
            return False  # the server's own names for vhosts' addresses
        if _is_management(address):
            address = MANAGEMENT  # every router's management node is "$management" to rules
        elif right == "send" and self._access.is_reply_address(address):
            return True
        matches = self._granted.get(right)
        return matches is not None and matches(address)

    def _audit(self, address: str, right: str, decision: bool) -> None:
        who = "anonymous" if self.user is None else repr(self.user)
        verdict = "allowed" if decision else "refused"
        audit.log(
            logging.DEBUG if decision else logging.INFO,
            "%s: user %s from %s, vhost %s, address %r, right %s",
            verdict, who, self.host, self.vhost, address, right,
        )  # fmt: skip

    def require(self, address: str, right: str) -> None:
        """Raise ``amqp:unauthorized-access`` naming ``address`` and ``right`` unless this
        connection has it."""
        if not self.allowed(address, right):
            who = "anonymous clients" if self.user is None else f"user {self.user!r}"
            where = "" if not self.prefix else f" in virtual host {self.vhost!r}"
            raise AmqpError(
                f"{who} may not {right} {address!r}{where}",
                condition=Condition.UNAUTHORIZED_ACCESS,
            )

    @property
    def may_manage(self) -> bool:
        """Whether the management node answers this connection."""
        return self.allowed(MANAGEMENT, "manage")

    def check_attach(self, link: Link, special: bool) -> None:
        """Check the client's attach of ``link`` (``special``: to a node of the server's
        own, such as ``$management``): raise ``amqp:unauthorized-access`` if the right it
        needs is not given.  Dynamic nodes need none, nor does the anonymous relay (each
        of its messages is checked by :meth:`relay`)."""
        terminus = link.remote_source if link.is_sender else link.remote_target
        if terminus is None or getattr(terminus, "dynamic", False):
            return
        address = getattr(terminus, "address", None)
        if address is None:
            return
        address = str(address)
        if special or _is_management(address):
            right = "manage"
        elif not link.is_sender:
            right = "send"
        elif getattr(terminus, "distribution_mode", None) == DistributionMode.COPY:
            right = "browse"
        else:
            right = "receive"
        self.require(address, right)

    def relay(self, to: str) -> str:
        """Check a message the anonymous relay brought for ``to``; return the address it
        goes to inside the server.  Raises ``amqp:unauthorized-access`` if refused."""
        inner = self._relayed.get(to)
        if inner is not None:
            return inner
        management = _is_management(to)
        self.require(to, "manage" if management else "send")
        inner = to if management else self.inner(to)
        if len(self._relayed) >= CACHE_SIZE:
            self._relayed.clear()
        self._relayed[to] = inner
        return inner

    # --- the vhost's address space --------------------------------------------------------------

    def inner(self, address: str) -> str:
        """Where the server keeps ``address`` of this connection's vhost (dynamic nodes and
        management are the server's, in every vhost)."""
        prefix = self.prefix
        if not prefix or self._access.is_reply_address(address) or _is_management(address):
            return address
        return prefix + address

    def outer(self, address: str) -> str:
        """The address a client of this vhost knows as the server's ``address``."""
        prefix = self.prefix
        return address[len(prefix) :] if prefix and address.startswith(prefix) else address


def _is_management(address: str) -> bool:
    """``$management``, or a router's ``_topo/0/<id>/$management``."""
    return address == MANAGEMENT or (
        address.startswith("_topo/") and address.endswith("/" + MANAGEMENT)
    )

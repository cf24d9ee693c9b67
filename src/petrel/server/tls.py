"""TLS on a server's listeners: who a client certificate says the client is, and watching the
certificate files.

:class:`IdentityRule` turns a verified client certificate's subject into the
user name SASL EXTERNAL grants, by the listener's ``tls.external_identity``:

- ``"cn"``: the subject's common name (a subject with none or several gives no
  identity);
- ``"subject"``: the whole subject, in RFC 4514 form (``CN=app,O=Example``);
- anything else is a regular expression that must match the whole RFC 4514
  subject and capture the name in a group called ``user``:
  ``"CN=(?P<user>[^,]+),OU=Apps,O=Example"``.

:class:`FileWatcher` reloads a listener's certificate, key and CA files when
they change (checked every few seconds; SIGHUP reloads at once).
"""

from __future__ import annotations

import asyncio
import logging
import re

from ..driver import ServerTls, TlsPeer

__all__ = ["FileWatcher", "IdentityRule"]

log = logging.getLogger("petrel.server")

#: The name of the group a regular-expression rule captures the user name in.
USER_GROUP = "user"


class IdentityRule:
    """A listener's ``tls.external_identity`` rule (see the module docstring).

    Making one raises ``ValueError`` naming the problem: a regular expression
    that does not compile or captures no ``user`` group.
    """

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self._pattern: re.Pattern[str] | None = None
        if rule not in ("cn", "subject"):
            try:
                self._pattern = re.compile(rule)
            except re.error as exc:
                raise ValueError(
                    f'external_identity {rule!r} is neither "cn", "subject" nor a valid '
                    f"regular expression: {exc}"
                ) from None
            if USER_GROUP not in self._pattern.groupindex:
                raise ValueError(
                    f"external_identity {rule!r}: a regular expression names the user in a "
                    f"group (?P<{USER_GROUP}>...)"
                )

    def identity(self, peer: TlsPeer) -> str | None:
        """The user name ``peer``'s certificate maps to; ``None`` (and one line logged,
        naming the subject) when it has none or does not fit the rule."""
        subject = peer.subject
        if subject is None:
            return None  # no certificate (an optional one not given): nothing to say
        name: str | None = None
        why = ""
        if self.rule == "subject":
            name = subject or None
            why = "an empty subject"
        elif self.rule == "cn":
            if len(peer.common_names) == 1:
                name = peer.common_names[0] or None
            why = f"{len(peer.common_names)} common names, not one"
        else:
            assert self._pattern is not None
            match = self._pattern.fullmatch(subject)
            if match is not None:
                name = match.group(USER_GROUP) or None
            why = f"no match for {self.rule!r}"
        if name is None:
            log.warning("client certificate %r gives no SASL EXTERNAL identity (%s)", subject, why)
        return name


class FileWatcher:
    """Checks the files of a listener's TLS context every ``interval`` seconds and reloads
    the context when they changed (written, replaced, removed).  A reload that fails
    keeps the previous context and logs one line; it is tried again when the files
    change again."""

    def __init__(self, context: ServerTls, interval: float) -> None:
        self.context = context
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def check(self) -> bool:
        """Reload the context if its files changed since it was last (re)loaded; whether
        it did (and succeeded)."""
        return self.context.files_changed() and self.context.reload()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception:  # never let a surprise end the watching
                log.exception("checking the TLS files of %s failed", self.context.name)

"""``petrel user``: edit a users file (SCRAM credentials, groups, the admin flag).

The file is the one a server's ``users_file`` names; the server notices the
change on its next connection.  Passwords are read from a prompt (twice) or,
with ``--password-stdin``, from the first line of standard input: never from
the command line, where other users of the machine could see them.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import click

from petrel.server import UsersFileError, edit_users_file, make_user, read_users_file

from ._common import fail

_FILE = click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The users file (a server's users_file).",
)
_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input's first line."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password is empty")
    return password


@click.group()
def user() -> None:
    """Add, change, delete and list the users of a users file."""


@user.command()
@_FILE
@click.argument("name")
@click.option("--group", "groups", multiple=True, metavar="G", help="A group (repeatable).")
@click.option("--admin", is_flag=True, help="May manage the server ($management).")
@_STDIN
def add(path: str, name: str, groups: tuple[str, ...], admin: bool, password_stdin: bool) -> None:
    """Add user NAME (the file is created if need be)."""
    password = _password(password_stdin)
    try:
        new = make_user(name, password, groups=groups, admin=admin)
        with edit_users_file(path, create=True) as content:
            if name in content.users:
                raise UsersFileError(f"user {name!r} exists (change it with passwd)")
            content.users[name] = new
    except UsersFileError as exc:
        fail("user", exc)
    click.echo(f"added {name}")


@user.command()
@_FILE
@click.argument("name")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="G",
    help="Replace the user's groups with these (repeatable).",
)
@click.option("--admin/--no-admin", default=None, help="Change whether it may manage.")
@click.option("--keep-password", is_flag=True, help="Change groups or --admin only.")
@_STDIN
def passwd(
    path: str,
    name: str,
    groups: tuple[str, ...],
    admin: bool | None,
    keep_password: bool,
    password_stdin: bool,
) -> None:
    """Give user NAME a new password (new salts too); --group and --admin change those."""
    password = None if keep_password else _password(password_stdin)
    try:
        with edit_users_file(path) as content:
            old = content.users.get(name)
            if old is None:
                raise UsersFileError(f"no user {name!r} in {path}")
            changed = make_user(
                name,
                password or "unused",
                groups=groups or old.groups,
                admin=old.admin if admin is None else admin,
            )
            if password is None:
                changed = replace(changed, credentials=old.credentials)
            content.users[name] = changed
    except UsersFileError as exc:
        fail("user", exc)
    click.echo(f"changed {name}")


@user.command()
@_FILE
@click.argument("name")
def delete(path: str, name: str) -> None:
    """Delete user NAME."""
    try:
        with edit_users_file(path) as content:
            if content.users.pop(name, None) is None:
                raise UsersFileError(f"no user {name!r} in {path}")
    except UsersFileError as exc:
        fail("user", exc)
    click.echo(f"deleted {name}")


@user.command(name="list")
@_FILE
def list_users(path: str) -> None:
    """List the users: name, admin, groups, and the iterations of their credentials."""
    try:
        content = read_users_file(path)
    except UsersFileError as exc:
        fail("user", exc)
    rows = [("NAME", "ADMIN", "GROUPS", "ITERATIONS")]
    for entry in sorted(content.users.values(), key=lambda u: u.name):
        iterations = sorted({c.iterations for c in entry.credentials.values()})
        rows.append(
            (
                entry.name,
                "yes" if entry.admin else "no",
                ",".join(sorted(entry.groups)) or "-",
                ",".join(map(str, iterations)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )

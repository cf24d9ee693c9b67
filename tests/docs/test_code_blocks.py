"""Every fenced code block of the guides (docs/*.md) is checked, so the docs cannot rot.

How each kind of block is checked is described in ``tests/docs/blocks.py``; the
``python`` blocks run against a ``petrel broker`` subprocess (``tests/docs/runner.py``).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest

from petrel.cli.main import cli
from petrel.router.config import RouterSettings
from petrel.server.config import BrokerSettings, read_settings
from petrel.server.users import read_users_file
from tests.helpers.servers import free_port, run_broker

from .blocks import COMMANDS, CONFIG, LANGUAGES, ROOT, RUN, Block, all_blocks, blocks, pages
from .runner import run_page

BLOCKS = all_blocks()


#: Pages whose fences may still lack a language, each with the reason; empty it when done.
def ids(found: list[Block]) -> list[str]:
    return [block.where.removeprefix("docs/") for block in found]


def of_language(*languages: str) -> list[Block]:
    return [block for block in BLOCKS if block.language in languages]


# --- every block says what it is --------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS, ids=ids(BLOCKS))
def test_every_block_says_what_it_is(block: Block) -> None:
    assert block.language in LANGUAGES, (
        f"{block.where}: a fence with language {block.language!r}; use one of "
        f"{sorted(LANGUAGES)} (tests/docs/blocks.py says what each means)"
    )
    if block.directive is not None:
        key, _ = block.directive
        expected = {"example": RUN, "config": CONFIG}[key]
        assert block.language == expected, (
            f"{block.where}: <!-- {key}: ... --> belongs above a {expected} block"
        )


def test_the_checker_sees_every_page() -> None:
    assert {page.name for page in pages()} >= {"index.md", "client.md", "broker.md", "router.md"}
    assert len(BLOCKS) > 50


# --- python: run, or an excerpt of a tested example -------------------------------------------


@dataclass
class PageSetup:
    """What a page's ``python`` blocks assume beyond a plain broker and ``conn``."""

    config: str | None = None
    http: bool = False
    givens: dict[str, Any] = field(default_factory=dict)


#: The pages whose blocks assume more than a plain broker.
SETUPS = {
    # The Proton client READs and UPDATEs the queue "orders": it exists from the start.
    "management.md": PageSetup(config='[[queues]]\nname = "orders"\n'),
    # `petrel.connect("ws://...")` needs the HTTP listener (AMQP over WebSockets).
    "http.md": PageSetup(http=True),
    # Alice logs in with SCRAM; `pw` is her password.
    "security.md": PageSetup(
        config='[[users]]\nname = "alice"\npassword = "wonderland"\n',
        givens={"pw": "wonderland"},
    ),
}

RUN_BLOCKS = [block for block in of_language(RUN) if block.directive is None]
RUN_PAGES = sorted({block.page.name for block in RUN_BLOCKS})
EXCERPTS = [block for block in of_language(RUN) if block.directive is not None]


@pytest.mark.parametrize("page", RUN_PAGES)
async def test_python_blocks_run(page: str) -> None:
    setup = SETUPS.get(page, PageSetup())
    page_blocks = [block for block in RUN_BLOCKS if block.page.name == page]
    http_port = free_port() if setup.http else None
    args = ["--http", f"http://127.0.0.1:{http_port}"] if http_port else []
    with run_broker(setup.config, args=args) as broker:
        await run_page(page_blocks, amqp_port=broker.port, http_port=http_port, givens=setup.givens)


def test_setups_name_pages_with_python_blocks() -> None:
    assert set(SETUPS) <= set(RUN_PAGES), "a setup for a page without python blocks to run"


def find_excerpt(excerpt: list[str], source: list[str]) -> bool:
    """Whether the non-blank lines of ``excerpt`` appear together and in order in
    ``source``, all shifted right by the same indentation."""
    wanted = [line.rstrip() for line in excerpt if line.strip()]
    lines = [line.rstrip() for line in source if line.strip()]
    if not wanted:
        return False
    first_indent = len(wanted[0]) - len(wanted[0].lstrip())
    for start in range(len(lines) - len(wanted) + 1):
        shift = len(lines[start]) - len(lines[start].lstrip()) - first_indent
        if shift < 0:
            continue
        if all(lines[start + k] == " " * shift + line for k, line in enumerate(wanted)):
            return True
    return False


def run_by_the_suite(example: Path) -> bool:
    """Whether a test outside tests/docs names the example file (and so runs it)."""
    for test_file in (ROOT / "tests").rglob("*.py"):
        if "docs" in test_file.relative_to(ROOT / "tests").parts:
            continue
        if example.name in test_file.read_text():
            return True
    return False


@pytest.mark.parametrize("block", EXCERPTS, ids=ids(EXCERPTS))
def test_python_excerpts_are_in_tested_examples(block: Block) -> None:
    assert block.directive is not None
    example = ROOT / block.directive[1]
    assert example.is_file(), f"{block.where}: {block.directive[1]} does not exist"
    assert find_excerpt(block.text.splitlines(), example.read_text().splitlines()), (
        f"{block.where}: the block's lines are not in {block.directive[1]} (as one run, "
        "in order): the example changed, or the block did"
    )
    assert run_by_the_suite(example), f"{block.directive[1]}: no test runs this example"


# --- toml: parses, and Petrel's loader takes it -----------------------------------------------

CONFIGS = of_language(CONFIG)


def config_kind(block: Block) -> str:
    if block.directive is not None:
        return block.directive[1]
    return "router" if block.page.name == "router.md" else "broker"


@pytest.mark.parametrize("block", CONFIGS, ids=ids(CONFIGS))
def test_toml_blocks_load(block: Block, tmp_path: Path) -> None:
    try:
        data = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as exc:
        raise AssertionError(f"{block.where}: not valid TOML: {exc}") from None
    kind = config_kind(block)
    path = tmp_path / "block.toml"
    path.write_text(block.text)
    if kind == "broker":
        read_settings(BrokerSettings, path)
    elif kind == "router":
        # A router's file names the router; a block about its other tables may leave it out.
        if "router" not in data:
            path.write_text('[router]\nid = "docs"\n\n' + block.text)
        read_settings(RouterSettings, path)
    elif kind == "users-file":
        read_users_file(path)
    else:
        assert kind == "fragment", f"{block.where}: unknown <!-- config: {kind} -->"


# --- sh and console: the petrel commands parse, the make targets exist ------------------------

COMMAND_BLOCKS = of_language(*COMMANDS)
MAKE_TARGETS = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def commands(block: Block) -> Iterator[list[str]]:
    """Each simple command of a block (split at pipes and ``&&``; ``$ `` lines only in a
    transcript), as its words."""
    text = block.text.replace("\\\n", " ")
    for line in text.splitlines():
        if block.language == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
        lexer.whitespace_split = True
        words: list[str] = []
        for word in lexer:
            if word in ("|", "||", "&", "&&", ";"):
                if words:
                    yield words
                words = []
            else:
                words.append(word)
        if words:
            yield words


def check_petrel_command(args: list[str]) -> None:
    """Parse ``args`` as the real ``petrel`` command line would, down to the subcommand."""
    command: click.Command = cli
    name, parent = "petrel", None
    while True:
        ctx = command.make_context(name, list(args), parent=parent)
        if not isinstance(command, click.Group):
            return
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return
        found, sub, args = command.resolve_command(ctx, rest)
        assert found is not None and sub is not None
        name, command, parent = found, sub, ctx


@pytest.mark.parametrize("block", COMMAND_BLOCKS, ids=ids(COMMAND_BLOCKS))
def test_commands_parse(block: Block) -> None:
    for words in commands(block):
        program = Path(words[0]).name
        if program == "petrel":
            try:
                check_petrel_command(words[1:])
            except click.UsageError as exc:
                if isinstance(exc, click.BadParameter) and "does not exist" in str(exc):
                    continue  # a file the reader has, and the suite does not
                raise AssertionError(f"{block.where}: {shlex.join(words)}: {exc}") from None
        elif program == "make":
            for target in words[1:]:
                assert target in MAKE_TARGETS, f"{block.where}: no make target {target!r}"


def test_the_command_checker_catches_a_wrong_option() -> None:
    with pytest.raises(click.NoSuchOption):
        check_petrel_command(["send", "orders", "--cuont", "3"])
    check_petrel_command(["send", "orders", "--count", "3"])


def test_the_page_order_is_the_file_order() -> None:
    for page in pages():
        lines = [block.line for block in blocks(page)]
        assert lines == sorted(lines)

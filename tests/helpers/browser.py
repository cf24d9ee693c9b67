"""Debian's Chromium driven by Playwright, for the browser tests (tests/http/).

Import this after ``pytest.importorskip("playwright.async_api")``.  Playwright's own
browsers are never used: .ci/run installs Debian's ``chromium``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator

from playwright.async_api import Browser, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Chromium, headless; closed on leaving."""
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()

"""Make the web console's pictures in docs/images/ (console-*.png) for docs/console.md.

They come from the console's own browser tests (tests/http/test_console.py), which save a
picture of each view when PETREL_CONSOLE_SCREENSHOTS names a folder: the pictures show
exactly what the tests check.  Needs Debian's Chromium and the dev extras (Playwright).

    .venv/bin/python bench/console_screenshots.py [FOLDER]     # default: docs/images
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"
    env = {**os.environ, "PETREL_CONSOLE_SCREENSHOTS": str(folder.resolve())}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/http/test_console.py",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    for picture in sorted(folder.glob("console-*.png")):
        print(picture.relative_to(ROOT) if picture.is_relative_to(ROOT) else picture)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())

"""Keep the suite's Proton on Proton's own SASL, whatever the machine has (``make test``).

python-qpid-proton has no Linux wheel on PyPI: pip and uv build it from its sdist,
and that build links Cyrus SASL wherever ``pkg-config libsasl2`` answers (Debian's
``libsasl2-dev``, which ``.ci/run`` installs for the separate build of
:mod:`tests.helpers.proton_cyrus`).  A Cyrus build behaves differently from the one
the tests are written for: as a client it picks SCRAM before PLAIN, as a server it
checks PLAIN against a local user database.  Which build a machine got would then
depend on the order its packages came in, or on a wheel cached from an earlier build.

``python tests/helpers/proton_own_sasl.py DIR`` makes ``DIR`` a pkg-config directory
holding every library the machine's pkg-config knows but libsasl2: with
``PKG_CONFIG_LIBDIR=DIR`` an install builds Proton with its own SASL (and still with
OpenSSL).  ``... --check DIR`` then looks at the installed Proton and, if a cached
wheel brought Cyrus SASL anyway (or the venv is older than this), rebuilds the same
version with ``DIR`` made afresh, bypassing every cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

#: The pkg-config module the build looks for to use Cyrus SASL.
CYRUS = "libsasl2.pc"
#: pkg-config's usual default path on Linux (a duplicate, without a multiarch name, is
#: harmless: the first file of a name wins).
_ARCH = sysconfig.get_config_var("MULTIARCH") or ""
_USUAL = (
    f"/usr/local/lib/{_ARCH}/pkgconfig",
    "/usr/local/lib/pkgconfig",
    "/usr/local/share/pkgconfig",
    f"/usr/lib/{_ARCH}/pkgconfig",
    "/usr/lib/pkgconfig",
    "/usr/share/pkgconfig",
)


def make_pkgconfig_dir(target: Path) -> None:
    """Fill ``target`` with links to every ``.pc`` file on pkg-config's default path but
    Cyrus SASL's (the first of a name wins, as in pkg-config's own search)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if shutil.which("pkg-config") is None:
        return  # no pkg-config: the build finds no Cyrus SASL either
    found = subprocess.run(
        ["pkg-config", "--variable", "pc_path", "pkg-config"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # A pkg-config that cannot say its path: the usual ones (else OpenSSL would go too).
    path = found.stdout.strip()
    folders = path.split(os.pathsep) if path else _USUAL
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            link = target / name
            if name.endswith(".pc") and name != CYRUS and not link.exists():
                link.symlink_to(os.path.join(folder, name))


def uses_cyrus(path: Path | None = None) -> bool:
    """Whether the Proton Python imports (from ``path`` first, if given) was built with
    Cyrus SASL.  Asked in a subprocess: a rebuild replaces the module."""
    probe = "import proton, sys; sys.exit(0 if proton.SASL.extended() else 1)"
    env = None if path is None else dict(os.environ, PYTHONPATH=str(path))
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, check=False)
    return done.returncode == 0


def build_proton(*options: str, env: dict[str, str]) -> None:
    """Build the installed version of python-qpid-proton from its sdist and install it
    with pip ``options``, bypassing every cache (a cached wheel may have been built the
    other way).  Raises ``CalledProcessError``, with pip's output, if that fails."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-cache-dir", "--no-deps", "--no-binary", "python-qpid-proton", *options,
         f"python-qpid-proton=={version('python-qpid-proton')}"],
        check=True, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip


def rebuild(pkgconfig: Path) -> None:
    """Build and install the installed version again, with Proton's own SASL."""
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(pkgconfig.resolve()))
    try:
        build_proton("--force-reinstall", env=env)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"building python-qpid-proton failed:\n{exc.stderr}") from None
    if uses_cyrus():
        raise SystemExit("python-qpid-proton still uses Cyrus SASL after a rebuild without it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="the pkg-config directory without libsasl2")
    parser.add_argument(
        "--check", action="store_true", help="rebuild the installed Proton if it uses Cyrus SASL"
    )
    args = parser.parse_args()
    if not args.check:
        make_pkgconfig_dir(args.dir)
    elif uses_cyrus():
        print("python-qpid-proton came with Cyrus SASL: building it again with its own SASL")
        make_pkgconfig_dir(args.dir)
        rebuild(args.dir)


if __name__ == "__main__":
    main()

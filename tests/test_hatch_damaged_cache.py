"""The sample's hook caches under a real rebuild: read-only, they serve it; damaged, each is made again and ships right.

Issue 27's first two "Done when", end to end. The hook cache the session's sample
wheel was built with (componentize-py's output, the snapshot, the `.cwasm`) is
copied (other tests and xdist workers read the original), then fresh copies of the
sample are built over it without build isolation: with the copy immutable; after
every entry in it was damaged; then with the new component's snapshot damaged, and
that snapshot's `.cwasm`. Three steps because a step whose input changed looks up
another key: componentize-py's output here is not the isolated build's, and the
sample's snapshot records when init ran. The quick tests of each check are in
test_cache_entries.py; this one shows they hold in the build users run, and that
the wheels answer right once installed.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from hatch_support import run_build, run_component
from test_cache_entries import listing, read_only
from test_hatch_precompile import SAMPLE, install_offline, lexicon, wasmtime_cache_files, wheelhouse  # noqa: F401 (a fixture)

from hatch_component_init.file_cache import damaged_entry_warning, read_only_cache_warning
from hatch_component_init.versions import wasmtime_version

pytestmark = pytest.mark.slow

#: The caches whose entries go into the wheel; each must hold an entry of the sample's build.
KINDS = ("components", "snapshots", "precompiled")
#: What the wheel ships from them (and the loader, whose checksum is computed from the shipped `.cwasm`).
SHIPPED = ("lexicon/lexicon.wasm", "lexicon/lexicon.cwasm", "lexicon/_component.py")
ANSWER = "listen: anagrams: enlist, silent, tinsel; one edit away: glisten,"
COMPONENTIZE_RAN = "Building component `build/lexicon.wasm` with componentize-py"
PRECOMPILE_RAN = f" MB, wasmtime {wasmtime_version()}) in "
#: The caches whose entries are made from componentize-py's output.
NEW_KINDS = ("snapshots", "precompiled")


def flip_throughout(path: Path) -> None:
    """One byte in every 4 KiB inverted: the size is unchanged, so only the SHA-256 can tell."""
    data = bytearray(path.read_bytes())
    for offset in range(0, len(data), 4096):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def files(cache: Path, kind: str) -> list[Path]:
    return sorted(path for path in (cache / kind).rglob("*") if path.is_file())


def damage(flat: list[Path]) -> None:
    """Every one of ``flat`` flipped throughout, and the largest truncated to half as well."""
    for path in flat:
        flip_throughout(path)
    largest = max(flat, key=lambda path: path.stat().st_size)
    largest.write_bytes(largest.read_bytes()[: largest.stat().st_size // 2])


def rebuild(tmp_path: Path, name: str, cache: Path) -> tuple[Path, str]:
    """A fresh copy of the sample built (`python -m build --wheel --no-isolation`) with ``cache``: (wheel, log)."""
    project = tmp_path / name
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns(".venv", "dist", "build", "__pycache__", "*.wasm"))
    log = run_build(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(project / "dist"), "."],
        cwd=project,
        env={"HATCH_COMPONENT_INIT_CACHE_DIR": str(cache), "HATCH_COMPONENT_INIT_SKIP": ""},
        timeout=900,
    )
    (wheel,) = (project / "dist").glob("lexicon-0.1.0-*.whl")
    return wheel, log


def members(wheel: Path) -> list[bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return [archive.read(name) for name in SHIPPED]


@pytest.mark.skipif(sys.platform == "win32", reason="the venv layout below is POSIX's")
def test_a_read_only_then_damaged_cache_serves_rebuilds_that_answer_right(
    tmp_path: Path, wheelhouse: Path, sample_wheel: tuple[Path, str]  # noqa: F811
) -> None:
    good_wheel, _ = sample_wheel
    cache = tmp_path / "hook-cache"
    # A copy: the session's is read by other tests (and other xdist workers) meanwhile.
    shutil.copytree(good_wheel.parents[2] / "hook-cache", cache)
    entries = {kind: files(cache, kind) for kind in KINDS}
    assert all(entries.values()), entries

    # Read-only (immutable: tests run as root): every step is a hit, nothing is written, one line says why.
    before = listing(cache)
    with read_only(cache):
        served, log = rebuild(tmp_path, "read-only", cache)
        assert listing(cache) == before, log
    assert "Built component `build/lexicon.wasm` from the cache" in log
    assert COMPONENTIZE_RAN not in log
    assert "Wasmtime not run" in log and "Pre-initializing" not in log and "indexed" not in log  # init did not run
    assert log.count(read_only_cache_warning(str(cache))) == 1, log
    assert members(served) == members(good_wheel)

    # Every entry damaged, in place (the largest, the snapshot or the `.cwasm`, cut to half too): componentize-py's
    # is warned about by name, removed and made again, and the build succeeds. Its new component (componentize-py's
    # output here differs from the isolated build's) has a snapshot and a `.cwasm` of its own, made and cached anew.
    damage([path for kind in KINDS for path in entries[kind]])
    _, log = rebuild(tmp_path, "damaged", cache)
    for path in entries["components"]:
        assert damaged_entry_warning("components", path) in log, (path, log)
        assert not path.exists()  # removed: the fresh entry has another name (its own SHA-256)
    assert COMPONENTIZE_RAN in log and "indexed 57476 words" in log and PRECOMPILE_RAN in log, log

    # That component's snapshot damaged in turn: the next build finds its component in the cache, and warns
    # about, removes and makes again the snapshot, and then a `.cwasm` (the sample's snapshot records when
    # init ran, so a new one is never the old one's bytes, and its `.cwasm` is another entry).
    made = {kind: [path for path in files(cache, kind) if path not in entries[kind]] for kind in NEW_KINDS}
    (snapshot,) = made["snapshots"]
    assert len(made["precompiled"]) == 1, made
    damage([snapshot])
    shipped, log = rebuild(tmp_path, "snapshot-damaged", cache)
    assert "Built component `build/lexicon.wasm` from the cache" in log and COMPONENTIZE_RAN not in log, log
    assert damaged_entry_warning("snapshots", snapshot) in log and not snapshot.exists(), log
    assert "indexed 57476 words" in log and PRECOMPILE_RAN in log, log  # init and the precompile ran again

    # And that snapshot's `.cwasm` damaged: the next build finds the snapshot, and warns about, removes and
    # makes again the `.cwasm`; the wheel has the same bytes as the build before: nothing damaged reached it,
    # nor the loader's checksum.
    old = entries["precompiled"] + made["precompiled"]
    (precompiled,) = [path for path in files(cache, "precompiled") if path not in old]
    damage([precompiled])
    rebuilt, log = rebuild(tmp_path, "precompiled-damaged", cache)
    assert "Wasmtime not run" in log and "Pre-initializing" not in log, log  # the snapshot was a hit
    assert damaged_entry_warning("precompiled", precompiled) in log, log
    # Made again from the same snapshot, the same machine code: under the same name, now with the bytes it names.
    assert hashlib.sha256(precompiled.read_bytes()).hexdigest() in precompiled.name
    assert PRECOMPILE_RAN in log, log
    assert members(rebuilt) == members(shipped)

    # The last wheel (its component made after every entry was damaged, its snapshot and `.cwasm` made again after
    # theirs were), installed alone in a fresh venv, answers through the loader (the checked `.cwasm`); its `.wasm`
    # answers too (run here with Winch: the loader's `--compile` path, a Cranelift compile, is tested on the
    # session's wheel by test_hatch_precompile.py and run.sh).
    venv = install_offline(tmp_path, wheelhouse, rebuilt)
    home = tmp_path / "home"
    out = lexicon(venv, home, "listen")
    assert ANSWER in out and "  loaded: precompiled lexicon.cwasm;" in out, out
    assert wasmtime_cache_files(home) == 0  # deserialized, not compiled: the loader trusted the shipped code
    with zipfile.ZipFile(rebuilt) as archive:
        shipped_wasm = archive.read("lexicon/lexicon.wasm")
    run = run_component(shipped_wasm, [("anagrams", ("listen",)), ("suggest", ("listen",))])
    assert run.results["anagrams"] == ["enlist", "silent", "tinsel"], run
    assert "glisten" in run.results["suggest"], run  # type: ignore[operator]

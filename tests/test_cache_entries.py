"""Every cache entry vouches for itself: a damaged one is a miss (removed, reported), a read-only cache still hits.

The hooks' caches (snapshots/, components/, precompiled/) share FileCache; a damaged
entry used to be served as it was: shipped in the wheel, or breaking every later build
with an error that never mentions the cache.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from hatch_support import RAW_COMPONENT, build_in_process, make_project, wheel_member
from test_engine_shapes import GLOBALS

from hatch_component_init.compile_cache import CompiledCache, DevelopmentCache
from hatch_component_init.file_cache import (
    CACHE_DIR_ENV,
    StagedCache,
    cache_warnings,
    default_cache_dir,
    file_digest,
    read_only_cache_warning,
    prune_least_recently_used,
)
from hatch_component_init.hatch.cache import ComponentCache, FileCache, PrecompiledCache, SnapshotCache

#: The hooks' caches, and the engine's code caches (instrumented components, editable installs' loads).
KINDS = [SnapshotCache, ComponentCache, PrecompiledCache, CompiledCache, DevelopmentCache]
#: Big enough that "the middle" and "truncated" are well inside it.
DATA = bytes(range(256)) * 64


def flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGES: list[Callable[[Path], None]] = [flip_middle, truncate, empty]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_entry_is_a_removed_and_reported_miss(
    tmp_path: Path, kind: type[FileCache], damage: Callable[[Path], None]
) -> None:
    cache = kind(tmp_path)
    entry = cache.put("k", DATA)
    assert entry.name == f"k-{hashlib.sha256(DATA).hexdigest()}{kind.SUFFIX}"
    damage(entry)
    assert cache.get("k") is None
    assert not entry.exists()
    assert cache.damaged == [entry]
    # The step runs again and puts a fresh entry, which is then a hit.
    again = cache.put("k", DATA)
    assert cache.get("k") == again
    assert again.read_bytes() == DATA
    assert cache.damaged == [entry]  # reported once, not again on the good entry


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("link", [True, False], ids=["linked", "copied"])
def test_a_staged_hit_is_checked_where_it_is_staged(
    tmp_path: Path, kind: type[FileCache], damage: Callable[[Path], None], link: bool
) -> None:
    cache = kind(tmp_path / "cache")
    entry = cache.put("k", DATA)
    stage = tmp_path / "build" / "app.wasm"
    stage.parent.mkdir()
    assert cache.get("k", stage=stage, link=link) == stage
    assert stage.read_bytes() == DATA and (stage.stat().st_ino == entry.stat().st_ino) == link
    stage.unlink()
    damage(entry)
    assert cache.get("k", stage=stage, link=link) is None
    assert cache.damaged == [entry] and not entry.exists()
    assert os.listdir(stage.parent) == []  # no partial file, no damaged copy


def cannot_open_the_stage(source: str | Path, target: str | Path) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", str(target))


def the_disk_fills_up(source: str | Path, target: str | Path) -> None:
    Path(target).write_bytes(Path(source).read_bytes()[:100])
    raise OSError(errno.ENOSPC, "No space left on device", str(target))


def cross_device(*args: object, **kwargs: object) -> None:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


@pytest.mark.parametrize("failure", [cannot_open_the_stage, the_disk_fills_up])
@pytest.mark.parametrize("link", [True, False], ids=["cross-device", "copied"])
def test_a_hit_that_cannot_be_staged_is_a_miss_that_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Callable[[str | Path, str | Path], None], link: bool
) -> None:
    # The copy can fail before it wrote anything (no partial file to remove) or halfway; either way the
    # build makes the file itself, and the entry, which is intact, stays in the cache unreported.
    cache = SnapshotCache(tmp_path / "cache")
    entry = cache.put("k", DATA)
    stage = tmp_path / "build" / "app.wasm"
    stage.parent.mkdir()

    monkeypatch.setattr(os, "link", cross_device)  # a cache on another file system: the hit is copied
    monkeypatch.setattr(shutil, "copyfile", failure)
    assert cache.get("k", stage=stage, link=link) is None
    assert os.listdir(stage.parent) == []
    assert entry.read_bytes() == DATA and cache.damaged == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_entry_is_a_miss_even_when_its_name_matches(tmp_path: Path, kind: type[FileCache]) -> None:
    # No snapshot, component or .cwasm is ever empty: an empty file named with the empty file's
    # checksum (what a put of nothing leaves) must not be shipped as a 0-byte component.
    cache = kind(tmp_path)
    entry = cache.put("k", b"")
    assert cache.get("k") is None
    assert not entry.exists()
    assert cache.damaged == [entry]
    # The size only stands in for the checksum when there is nothing to hash: one byte is hashed, and hits.
    one_byte = cache.put("k", b"\0")
    assert cache.get("k") == one_byte and one_byte.exists()
    assert cache.damaged == [entry]


def test_an_entry_is_checked_without_being_read_whole(tmp_path: Path) -> None:
    # Real apps' entries are 20-60 MB, and a build checks several: hashing streams them.
    cache = SnapshotCache(tmp_path)
    entry = cache.put("k", os.urandom(16 << 20))
    tracemalloc.start()
    try:
        assert cache.get("k") == entry
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"a 16 MiB entry's check held {peak} bytes at once"


@pytest.mark.parametrize("kind", KINDS)
def test_put_file_entries_are_checked_too(tmp_path: Path, kind: type[FileCache]) -> None:
    source = tmp_path / "out.wasm"
    source.write_bytes(DATA)
    cache = kind(tmp_path / "cache")
    entry = cache.put_file("k", source)
    assert cache.get("k") == entry
    flip_middle(entry)
    assert cache.get("k") is None
    assert cache.damaged == [entry]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "error", [PermissionError(errno.EACCES, "Permission denied"), OSError(errno.EROFS, "Read-only file system")]
)
def test_a_read_only_cache_still_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[FileCache], error: OSError
) -> None:
    cache = kind(tmp_path)
    entry = cache.put("k", DATA)
    # Tests run as root, whom chmod does not stop: a read-only mount is what refuses the touch.
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(os, "utime", refuse)
    assert kind(tmp_path).get("k") == entry
    assert entry.read_bytes() == DATA


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("staged", [False, True], ids=["plain", "staged"])
def test_a_damaged_entry_is_told_once_with_its_cache_and_path(
    tmp_path: Path, kind: type[FileCache], staged: bool
) -> None:
    # The hooks look up through a StagedCache, which must name the kind of the cache it stages from.
    cache = kind(tmp_path / "cache")
    entry = cache.put("k", DATA)
    flip_middle(entry)
    looked_up = StagedCache(cache, lambda: tmp_path / "staged.wasm") if staged else cache
    assert looked_up.get("k") is None
    assert cache_warnings(looked_up) == [
        (
            f"Removed a damaged entry of the {kind.KIND} cache, `{entry}` (its bytes no longer match the SHA-256 "
            "in its name); it is made again"
        )
    ]
    assert cache_warnings(looked_up) == []  # told once: the list of damaged entries is emptied


def skipped(kind: type[FileCache], entry: Path, reason: str) -> str:
    return (
        f"Skipped a damaged entry of the {kind.KIND} cache, `{entry}` (its bytes no longer match the SHA-256 "
        f"in its name), which could not be removed ({reason}); it is made again"
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("staged", [False, True], ids=["plain", "staged"])
def test_a_damaged_entry_of_a_read_only_cache_is_skipped_and_not_said_removed(
    tmp_path: Path, kind: type[FileCache], staged: bool
) -> None:
    root = tmp_path / "cache"
    cache = kind(root)
    entry = cache.put("k", DATA)
    flip_middle(entry)
    before = listing(root)
    looked_up = StagedCache(cache, lambda: tmp_path / "staged.wasm") if staged else cache
    with read_only(root):
        assert looked_up.get("k") is None
        assert listing(root) == before
    # Immutable for root (EPERM); without write permission for anyone else (EACCES).
    reason = os.strerror(errno.EPERM if os.geteuid() == 0 else errno.EACCES)
    assert cache_warnings(looked_up) == [skipped(kind, entry, reason), read_only_cache_warning(str(root))]
    assert cache_warnings(looked_up) == []


@pytest.mark.parametrize(("code", "read_only_cache"), [(errno.EROFS, True), (errno.EBUSY, False), (None, False)])
def test_a_damaged_entry_that_cannot_be_removed_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int | None, read_only_cache: bool
) -> None:
    """A read-only mount (docs/building.md's example) is said to be one; another failure is only the reason
    (the system's words, or the error's type where it gave none)."""
    cache = SnapshotCache(tmp_path)
    entry = cache.put("k", DATA)
    flip_middle(entry)

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError() if code is None else OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    assert cache.get("k") is None
    told = [skipped(SnapshotCache, entry, "PermissionError" if code is None else os.strerror(code))]
    assert cache_warnings(cache) == told + [read_only_cache_warning(str(tmp_path))] * read_only_cache
    assert cache.read_only == read_only_cache


def test_a_damaged_entry_another_build_removed_first_is_said_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SnapshotCache(tmp_path)
    entry = cache.put("k", DATA)
    flip_middle(entry)
    unlink = Path.unlink

    def removed_meanwhile(self: Path, missing_ok: bool = False) -> None:
        unlink(self)  # the other build's
        unlink(self, missing_ok)  # ours: FileNotFoundError

    monkeypatch.setattr(Path, "unlink", removed_meanwhile)
    assert cache.get("k") is None
    assert cache_warnings(cache) == [
        f"Removed a damaged entry of the snapshots cache, `{entry}` (its bytes no longer match the SHA-256 "
        "in its name); it is made again"
    ]
    assert not cache.read_only and not entry.exists()


def put_bytes(cache: FileCache, key: str, source: Path) -> Path:
    return cache.put(key, source.read_bytes())


def put_copy(cache: FileCache, key: str, source: Path) -> Path:
    return cache.put_file(key, source)


@pytest.mark.parametrize("store", [put_bytes, put_copy])
@pytest.mark.parametrize("max_entries", [3, 1])
def test_a_new_entry_is_kept_with_the_most_recently_used_others(
    tmp_path: Path, store: Callable[[FileCache, str, Path], Path], max_entries: int
) -> None:
    # A full cache keeps max_entries: the new entry and the max_entries - 1 others last used
    # (with max_entries=1, none of them: the new entry alone).
    old = [SnapshotCache(tmp_path / "cache", max_entries=3).put(f"old{i}", DATA[i:]) for i in range(3)]
    for i, entry in enumerate(old):
        os.utime(entry, (i, i))
    cache = SnapshotCache(tmp_path / "cache", max_entries=max_entries)
    source = tmp_path / "out.wasm"
    source.write_bytes(DATA)
    new = store(cache, "new", source)
    assert sorted(cache.entries.iterdir()) == sorted([*old[len(old) - (max_entries - 1) :], new])


def removed_before_it_is_dated(entries: list[Path]) -> tuple[list[Path], Callable[[Path], None]]:
    return [entries[0].with_name("gone"), *entries], Path.unlink


def removed_before_we_remove_it(entries: list[Path]) -> tuple[list[Path], Callable[[Path], None]]:
    def unlink_after_another_build(path: Path) -> None:
        path.unlink()  # the other build's removal
        path.unlink()

    return entries, unlink_after_another_build


@pytest.mark.parametrize("race", [removed_before_it_is_dated, removed_before_we_remove_it])
def test_pruning_goes_on_past_entries_another_build_removed(
    tmp_path: Path, race: Callable[[list[Path]], tuple[list[Path], Callable[[Path], None]]]
) -> None:
    # Builds prune the same cache at once: an entry gone before its time is read, or before our
    # removal, is no error and does not stop the pruning of the others.
    entries = []
    for i in range(4):
        entry = tmp_path / f"e{i}"
        entry.write_bytes(DATA)
        os.utime(entry, (i, i))
        entries.append(entry)
    listed, remove = race(entries)
    prune_least_recently_used(listed, 1, remove)
    assert list(tmp_path.iterdir()) == [entries[-1]]


def test_another_keys_entry_is_not_taken_for_this_one(tmp_path: Path) -> None:
    # "k" is a prefix of "k-0"'s entries, which sort before any of "k"'s own; only a 64-hex-digit
    # checksum after "k-" belongs to "k", and a lookup looks past the others for it.
    cache = SnapshotCache(tmp_path)
    other = cache.put("k-0", DATA)
    assert cache.get("k") is None
    ours = cache.put("k", DATA[1:])
    assert cache.get("k") == ours
    assert other.exists() and cache.damaged == []


@pytest.mark.parametrize(
    ("platform", "local", "under"),
    [
        # LOCALAPPDATA can be set off Windows too (WSL passes it through, a shared dotfile exports it).
        ("linux", True, ("xdg", "hatch-component-init")),
        ("win32", True, ("local", "hatch-component-init", "Cache")),
        ("win32", False, ("xdg", "hatch-component-init")),
    ],
    ids=["linux-with-LOCALAPPDATA", "windows", "windows-without-LOCALAPPDATA"],
)
def test_the_cache_is_under_localappdata_on_windows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, local: bool, under: tuple[str, ...]
) -> None:
    # `sys.platform` read as each system gives it: both branches run on any machine.
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local") if local else "")
    assert default_cache_dir() == tmp_path.joinpath(*under)


def pruned_while_read(path: Path) -> str:
    path.unlink()  # another build's pruning, between the lookup's listing and its reading
    return file_digest(path)


def unreadable(path: Path) -> str:
    raise PermissionError(errno.EACCES, "Permission denied", str(path))


def damaged_and_removed_meanwhile(path: Path) -> str:
    digest = file_digest(path)
    path.unlink()  # another build found it damaged too, and removed it first
    return digest


@pytest.mark.parametrize(
    ("interference", "damage", "reported"),
    [(pruned_while_read, None, False), (unreadable, None, False), (damaged_and_removed_meanwhile, flip_middle, True)],
    ids=["pruned-while-read", "unreadable", "damaged-and-removed-meanwhile"],
)
def test_an_entry_that_vanishes_or_cannot_be_read_during_its_check_is_a_miss(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interference: Callable[[Path], str],
    damage: Callable[[Path], None] | None,
    reported: bool,
) -> None:
    # A lookup races other builds' pruning: an entry it cannot vouch for is never handed out,
    # and only one whose bytes were read and found wrong is reported as damaged.
    cache = SnapshotCache(tmp_path)
    entry = cache.put("k", DATA)
    if damage is not None:
        damage(entry)
    monkeypatch.setattr("hatch_component_init.file_cache.file_digest", interference)
    assert cache.get("k") is None
    assert cache.damaged == ([entry] if reported else [])


@pytest.mark.parametrize("linkable", [True, False], ids=["linked", "cross-device"])
def test_a_new_entry_is_staged_as_a_hard_link_where_links_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linkable: bool
) -> None:
    # Snapshots and components are tens of MB: a build's staged copy of what it just cached shares
    # the entry's blocks, and is a real copy only where the stage cannot link to the cache.
    cache = SnapshotCache(tmp_path / "cache")
    stage = tmp_path / "build" / "app.wasm"
    stage.parent.mkdir()
    if not linkable:
        monkeypatch.setattr(os, "link", cross_device)
    staged = StagedCache(cache, lambda: stage).put("k", DATA)
    (entry,) = cache.entries.iterdir()
    assert staged == stage and staged.read_bytes() == DATA
    assert (staged.stat().st_ino == entry.stat().st_ino) == linkable


HOOK = f'[tool.hatch.build.hooks.component-init]\ncomponent = "{RAW_COMPONENT}"\ndestination = "greeter_pkg/app.wasm"\n'


def test_the_hook_rebuilds_a_damaged_snapshot_and_says_so(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "p", HOOK, raw_component=GLOBALS)
    first = wheel_member(build_in_process(project), "greeter_pkg/app.wasm")
    (entry,) = (snapshot_cache_dir / "snapshots").iterdir()
    assert entry.read_bytes() == first
    capsys.readouterr()
    flip_middle(entry)
    for wheel in (project / "dist").glob("*.whl"):
        wheel.unlink()
    second = wheel_member(build_in_process(project), "greeter_pkg/app.wasm")
    log = capsys.readouterr().err
    assert second == first
    warnings = [line for line in log.splitlines() if "damaged" in line]
    assert len(warnings) == 1, log
    assert str(entry) in warnings[0] and "snapshots" in warnings[0]
    # The run happened again (not "from the cache") and left a fresh, intact entry in its place.
    assert "from the cache" not in log
    assert entry.read_bytes() == first


def test_the_hook_recompiles_a_damaged_precompiled_entry_and_says_so(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "p", HOOK + "precompile = true\n", raw_component=GLOBALS)
    first = wheel_member(build_in_process(project), "greeter_pkg/app.cwasm")
    (entry,) = (snapshot_cache_dir / "precompiled").iterdir()
    capsys.readouterr()
    truncate(entry)
    for wheel in (project / "dist").glob("*.whl"):
        wheel.unlink()
    second = wheel_member(build_in_process(project), "greeter_pkg/app.cwasm")
    log = capsys.readouterr().err
    assert second == first
    warnings = [line for line in log.splitlines() if "damaged" in line]
    assert len(warnings) == 1, log
    assert str(entry) in warnings[0] and "precompiled" in warnings[0]


def test_the_componentize_hook_runs_again_over_a_damaged_entry_and_says_so(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatch_support import COMPONENTIZE_HOOK

    from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

    # A stand-in for componentize-py (as in test_hatch_componentize_cache.py): a real process that
    # logs its runs and writes an output that differs every run.
    runs = tmp_path / "runs.txt"
    runs.write_text("")

    def stand_in(_hook: ComponentizePyBuildHook, output: Path) -> list[str]:
        script = (
            "import sys, os; open(sys.argv[2], 'a').write('run\\n'); "
            "open(sys.argv[1], 'wb').write(b'\\0asm component ' + os.urandom(8))"
        )
        return [sys.executable, "-c", script, str(output), str(runs)]

    monkeypatch.setattr(ComponentizePyBuildHook, "command", stand_in)
    project = make_project(tmp_path / "p", COMPONENTIZE_HOOK)
    build_in_process(project)
    (entry,) = (snapshot_cache_dir / "components").iterdir()
    capsys.readouterr()
    flip_middle(entry)
    (project / RAW_COMPONENT).unlink()
    build_in_process(project)
    log = capsys.readouterr().err
    # The damaged output was not copied: componentize-py ran again, and its new output was cached.
    assert len(runs.read_text().splitlines()) == 2
    (fresh,) = (snapshot_cache_dir / "components").iterdir()
    assert fresh.read_bytes() == (project / RAW_COMPONENT).read_bytes()
    warnings = [line for line in log.splitlines() if "damaged" in line]
    assert len(warnings) == 1, log
    assert str(entry) in warnings[0] and "components" in warnings[0]


# -- read-only caches ---------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[None]:
    """``root`` and everything in it made read-only for real: immutable for root (whom chmod does not stop)."""
    paths = [str(path) for path in sorted(root.rglob("*"), reverse=True)] + [str(root)]
    if os.geteuid() != 0:
        modes = {path: os.stat(path).st_mode for path in paths}
        for path in paths:
            os.chmod(path, modes[path] & ~0o222)
        try:
            yield
        finally:
            for path in reversed(paths):
                os.chmod(path, modes[path])
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", *paths], check=False).returncode != 0:
        subprocess.run(["chattr", "-i", *paths], check=False, capture_output=True)
        pytest.skip("running as root on a file system without immutable files: nothing here is read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *paths], check=True)


def listing(root: Path) -> list[tuple[str, int, int]]:
    """Every path under ``root`` with its size and modification time: what a write would change."""
    return [(str(path), path.lstat().st_size, path.lstat().st_mtime_ns) for path in sorted(root.rglob("*"))]


#: What a build of the `precompile = true` project ships from the caches.
SHIPPED = ("greeter_pkg/app.wasm", "greeter_pkg/app.cwasm")


def built_once(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """A project with `precompile = true`, built once (its entries now in the caches): it, and what it shipped."""
    project = make_project(tmp_path / "p", HOOK + "precompile = true\n", raw_component=GLOBALS)
    first = build_in_process(project)
    shipped = [wheel_member(first, member) for member in SHIPPED]
    first.unlink()
    return project, shipped


def test_a_read_only_cache_serves_a_rebuild_and_says_so_once(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, shipped = built_once(tmp_path)
    before = listing(snapshot_cache_dir)
    capsys.readouterr()
    with read_only(snapshot_cache_dir):
        second = build_in_process(project)
        assert listing(snapshot_cache_dir) == before  # nothing written, not even an access time
    log = capsys.readouterr().err
    assert [wheel_member(second, member) for member in SHIPPED] == shipped
    assert "from the cache (" in log and "Wasmtime not run" in log
    assert "Pre-initializing" not in log  # init did not run
    lines = [line for line in log.splitlines() if "read-only" in line]
    assert lines == [f"The cache in `{snapshot_cache_dir}` is read-only: its entries are used as they are, "
                     "and what is not in it is made without being cached"], log  # fmt: skip
    check_globals(wheel_member(second, "greeter_pkg/app.wasm"))


def test_a_read_only_cache_with_damaged_entries_builds_anew_and_says_they_were_skipped(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, shipped = built_once(tmp_path)
    entries = [path for kind in ("precompiled", "snapshots") for path in (snapshot_cache_dir / kind).iterdir()]
    assert [path.parent.name for path in entries] == ["precompiled", "snapshots"]
    for path in entries:
        flip_middle(path)
    before = listing(snapshot_cache_dir)
    capsys.readouterr()
    with read_only(snapshot_cache_dir):
        second = build_in_process(project)
        assert listing(snapshot_cache_dir) == before  # the damaged entries are still there, untouched
    log = capsys.readouterr().err
    assert "Pre-initializing" in log  # made again, not served from the damaged entry
    assert [wheel_member(second, member) for member in SHIPPED] == shipped
    reason = os.strerror(errno.EPERM if os.geteuid() == 0 else errno.EACCES)
    for kind, path in zip((PrecompiledCache, SnapshotCache), entries):
        assert skipped(kind, path, reason) in log, log
    assert "Removed a damaged entry" not in log
    assert log.count(read_only_cache_warning(str(snapshot_cache_dir))) == 1, log
    # Its new snapshot could not be cached either: said, with the cache and the reason.
    assert f"Could not write the snapshot cache in `{snapshot_cache_dir}`: [Errno {errno.EPERM if os.geteuid() == 0 else errno.EACCES}]" in log


def test_an_in_tree_write_that_cannot_begin_takes_the_cache_write_with_it(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An editable build writes the snapshot to the cache and to the source tree at once: when the tree's write
    cannot begin, the cache's, already under way, is taken back (no temp file waits for a later build's sweep)."""
    from hatch_support import DEV_MODE_DIRS, failed_build

    from hatch_component_init.hatch import component_init

    project = make_project(tmp_path / "p", HOOK, raw_component=GLOBALS, wheel_options=DEV_MODE_DIRS)
    tree = project / "greeter_pkg" / "app.wasm"
    begun = component_init.PendingWrite

    def refuse_the_tree(path: Path, data: bytes) -> object:
        if Path(path) == tree:
            raise PermissionError(13, "Permission denied", str(path))
        return begun(path, data)

    monkeypatch.setattr(component_init, "PendingWrite", refuse_the_tree)
    failure = failed_build(project, capsys, version="editable")
    assert failure.reported(f"Build hook `component-init` failed: [Errno 13] Permission denied: '{tree}'"), failure
    assert [path.name for path in snapshot_cache_dir.rglob("*.tmp")] == []
    assert not any((snapshot_cache_dir / "snapshots").iterdir())
    assert not tree.exists()


@pytest.mark.parametrize("precompile", [False, True])
@pytest.mark.parametrize("rebuild_on_load", [True, False])
def test_an_editable_build_says_how_its_loader_compiles(
    tmp_path: Path, snapshot_cache_dir: Path, capsys: pytest.CaptureFixture[str], precompile: bool,
    rebuild_on_load: bool,
) -> None:
    """component_init._install_loader_in_tree: the line names the compiler and cache, says that `precompile` is
    for regular wheels when it is on, and whether the loader rebuilds."""
    from hatch_support import DEV_MODE_DIRS

    table = HOOK + 'loader = "greeter_pkg/_component.py"\n' + f"precompile = {str(precompile).lower()}\n"
    table += f"rebuild-on-load = {str(rebuild_on_load).lower()}\n"
    project = make_project(tmp_path / "p", table, raw_component=GLOBALS, wheel_options=DEV_MODE_DIRS)
    capsys.readouterr()
    build_in_process(project, version="editable")
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "wrote the loader" in line]
    how = "Winch and hatch-component-init's code cache" if rebuild_on_load else "Wasmtime's cache"
    assert line == (
        "Editable install: wrote the loader to `greeter_pkg/_component.py` in the source tree; it compiles "
        f"`greeter_pkg/app.wasm` with {how}" + " (`precompile` applies to regular wheels only)" * precompile
        + "; it rebuilds the component when the app changed" * rebuild_on_load
    )


def test_a_snapshot_the_cache_cannot_take_in_is_shipped_and_said(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """component_init._keep_checked: the entry's write began but cannot be put in place (a full disk at the
    rename): the build warns, and ships the checked snapshot from its own staging file."""
    project, shipped = built_once(tmp_path)
    for entry in (snapshot_cache_dir / "snapshots").iterdir():
        entry.unlink()  # a miss: init runs again and the snapshot is written to the cache anew

    def full(self: SnapshotCache, pending: object) -> Path:
        pending.discard()  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(SnapshotCache, "finish_put", full)
    capsys.readouterr()
    wheel = build_in_process(project)
    log = capsys.readouterr().err
    assert f"Could not write the snapshot cache in `{snapshot_cache_dir}`: [Errno {errno.ENOSPC}] No space left" in log
    assert [wheel_member(wheel, member) for member in SHIPPED] == shipped
    assert not any((snapshot_cache_dir / "snapshots").iterdir())


def test_an_editable_build_stopped_while_its_snapshot_is_cached_leaves_the_tree_as_it_was(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """component_init._keep_checked: stopped (a signal's exception) while the cache's entry is put in place, the
    in-tree write begun with it is taken back: no snapshot in the tree and no temp file next to where it goes."""
    from hatch_support import DEV_MODE_DIRS

    class Stopped(BaseException):
        pass

    def stopped(self: SnapshotCache, pending: object) -> Path:
        pending.discard()  # type: ignore[attr-defined]
        raise Stopped

    project = make_project(tmp_path / "p", HOOK, raw_component=GLOBALS, wheel_options=DEV_MODE_DIRS)
    monkeypatch.setattr(SnapshotCache, "finish_put", stopped)
    with pytest.raises(Stopped):
        build_in_process(project, version="editable")
    assert not (project / "greeter_pkg" / "app.wasm").exists()
    assert [path.name for path in project.rglob("*.tmp")] == []


@pytest.mark.parametrize("destination", ["greeter_pkg/app.wasm", "greeter_pkg/gen/wasm/app.wasm"], ids=["next-to", "nested"])
def test_an_editable_build_writes_its_snapshot_in_the_tree_and_leaves_no_temp_file(
    tmp_path: Path, snapshot_cache_dir: Path, destination: str
) -> None:
    """The in-tree write begun with the cache's is committed, into folders made as needed."""
    from hatch_support import DEV_MODE_DIRS

    table = HOOK.replace('destination = "greeter_pkg/app.wasm"', f'destination = "{destination}"')
    project = make_project(tmp_path / "p", table, raw_component=GLOBALS, wheel_options=DEV_MODE_DIRS)
    build_in_process(project, version="editable")
    check_globals((project / destination).read_bytes())
    assert [path.name for path in project.rglob("*.tmp")] == []


def check_globals(snapshot: bytes) -> None:
    from wat_support import Running

    assert Running(snapshot, wasi=False).call("a") == -7


# -- a concurrent pruner ------------------------------------------------------------------------


def test_a_build_survives_another_builds_pruning_between_lookup_and_wheel(
    tmp_path: Path, snapshot_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other builds fill the cache between each lookup (or put) of ours and hatchling's reading of the file."""
    project = make_project(tmp_path / "p", HOOK + 'precompile = true\nloader = "greeter_pkg/_component.py"\n',
                           raw_component=GLOBALS)  # fmt: skip
    get, put, finish_put = FileCache.get, FileCache.put, FileCache.finish_put

    flooding = []

    def flood(cache: FileCache) -> None:
        if flooding:
            return  # the other build's own puts
        flooding.append(True)
        other = type(cache)(cache.directory)  # another build's view of the same cache
        later = time.time() + 60  # used after ours (timestamps are too coarse to tell puts in a row apart)
        for i in range(other.max_entries):
            entry = other.put(f"other-{i}", os.urandom(64))
            os.utime(entry, (later + i, later + i))
        flooding.clear()

    def get_then_flood(self: FileCache, key: str, *args: object, **kwargs: object) -> Path | None:
        found = get(self, key, *args, **kwargs)  # type: ignore[arg-type]
        flood(self)
        return found

    def put_then_flood(self: FileCache, key: str, data: bytes) -> Path:
        path = put(self, key, data)
        flood(self)
        return path

    def finish_put_then_flood(self: FileCache, pending: object) -> Path:
        path = finish_put(self, pending)  # type: ignore[arg-type]
        flood(self)
        return path

    def check(wheel: Path) -> None:
        check_globals(wheel_member(wheel, "greeter_pkg/app.wasm"))
        # The loader's checksum is that of the `.cwasm` the wheel carries.
        cwasm = wheel_member(wheel, "greeter_pkg/app.cwasm")
        assert hashlib.sha256(cwasm).hexdigest() in wheel_member(wheel, "greeter_pkg/_component.py").decode()
        wheel.unlink()

    # Misses: the entries are pruned right after they are put.
    with monkeypatch.context() as patches:
        patches.setattr(FileCache, "put", put_then_flood)
        patches.setattr(FileCache, "finish_put", finish_put_then_flood)
        check(build_in_process(project))
    # Hits: a build fills the cache, the next finds the entries, then they are pruned.
    shutil.rmtree(snapshot_cache_dir)
    check(build_in_process(project))
    monkeypatch.setattr(FileCache, "get", get_then_flood)
    check(build_in_process(project))
    assert not list((snapshot_cache_dir / "snapshots").glob("[!o]*"))  # ours was pruned indeed

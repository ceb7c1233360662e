"""The snapshot cache: what its key covers, where it lives, and that a hit is fast."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from hatch_component_init.hatch import keys as keys_module
from hatch_component_init.hatch.cache import (
    ComponentCache,
    FileCache,
    PrecompiledCache,
    SnapshotCache,
    default_cache_dir,
)
from hatch_component_init.hatch.digests import tree_digest
from hatch_component_init.hatch.keys import snapshot_key
from hatch_component_init.hatch.component_init import ComponentInitBuildHook
from hatch_component_init.options import InitOptions, WasiOptions


def options(**kwargs: object) -> InitOptions:
    return InitOptions(**kwargs)  # type: ignore[arg-type]


class TestCacheDir:
    def test_override(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "c"))
        assert default_cache_dir() == tmp_path / "c"

    @pytest.mark.skipif(os.name == "nt", reason="POSIX cache locations")
    def test_xdg(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.delenv("HATCH_COMPONENT_INIT_CACHE_DIR", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert default_cache_dir() == tmp_path / "hatch-component-init"

    @pytest.mark.skipif(os.name == "nt", reason="POSIX cache locations")
    def test_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.delenv("HATCH_COMPONENT_INIT_CACHE_DIR", raising=False)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert default_cache_dir() == tmp_path / ".cache" / "hatch-component-init"


class TestKey:
    def test_stable(self) -> None:
        assert snapshot_key(b"abc", options()) == snapshot_key(b"abc", options())

    @pytest.mark.parametrize(
        "changed",
        [
            options(init_func="other"),
            options(keep_init_func=True),
            options(reset_first_call=False),
            options(zero_free_memory=False),
            options(max_memory=1 << 20),
            options(wasi=WasiOptions(enabled=False)),
            options(wasi=WasiOptions(env=(("A", "1"),))),
        ],
    )
    def test_options_count(self, changed: InitOptions) -> None:
        assert snapshot_key(b"abc", changed) != snapshot_key(b"abc", options())

    def test_timeout_does_not_count(self) -> None:
        # A timeout can only stop a run; a finished run's result does not depend on it.
        assert snapshot_key(b"abc", options(timeout=1)) == snapshot_key(b"abc", options(timeout=None))

    def test_input_counts(self) -> None:
        assert snapshot_key(b"abc", options()) != snapshot_key(b"abd", options())

    def test_versions_count(self, monkeypatch: pytest.MonkeyPatch) -> None:
        before = snapshot_key(b"abc", options())
        monkeypatch.setattr(keys_module, "wasmtime_version", lambda: "0.0.0")
        assert snapshot_key(b"abc", options()) != before
        monkeypatch.setattr(keys_module, "__version__", "0.0.0")
        assert snapshot_key(b"abc", options()) != before

    def test_wasmtime_version_read(self) -> None:
        import importlib.metadata

        assert keys_module.wasmtime_version() == importlib.metadata.version("wasmtime")

    def test_dir_contents_count(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        (data / "sub").mkdir(parents=True)
        (data / "a.txt").write_text("one")
        (data / "sub" / "b.txt").write_text("two")
        with_dirs = options(wasi=WasiOptions(dirs=((data, "/data"),)))
        keys = [snapshot_key(b"abc", with_dirs)]

        (data / "sub" / "b.txt").write_text("TWO")
        keys.append(snapshot_key(b"abc", with_dirs))
        (data / "sub" / "b.txt").rename(data / "sub" / "c.txt")
        keys.append(snapshot_key(b"abc", with_dirs))
        (data / "empty").mkdir()
        keys.append(snapshot_key(b"abc", with_dirs))
        keys.append(snapshot_key(b"abc", options(wasi=WasiOptions(dirs=((data, "/elsewhere"),)))))
        assert len(set(keys)) == len(keys)

    def test_tree_digest_ignores_timestamps(self, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("one")
        before = tree_digest(tmp_path)
        os.utime(tmp_path / "a.txt", (0, 0))
        assert tree_digest(tmp_path) == before


class TestStore:
    def test_put_get(self, tmp_path: Path) -> None:
        cache = SnapshotCache(tmp_path)
        assert cache.get("k") is None
        path = cache.put("k", b"data")
        assert cache.get("k") == path
        assert path.read_bytes() == b"data"
        # Nothing but the entry, named with its checksum: atomic writes leave no temp files behind.
        assert [p.name for p in (tmp_path / "snapshots").iterdir()] == [f"k-{hashlib.sha256(b'data').hexdigest()}.wasm"]

    def test_prunes_least_recently_used(self, tmp_path: Path) -> None:
        cache = SnapshotCache(tmp_path, max_entries=3)
        for i, key in enumerate(["a", "b", "c"]):
            os.utime(cache.put(key, b"x"), (i, i))
        cache.get("a")  # used now: the newest
        cache.put("d", b"x")
        assert sorted(p.stem.split("-")[0] for p in (tmp_path / "snapshots").iterdir()) == ["a", "c", "d"]

    @pytest.mark.parametrize("kind", [SnapshotCache, ComponentCache, PrecompiledCache])
    def test_keeps_16_entries_by_default(self, tmp_path: Path, kind: type[FileCache]) -> None:
        cache = kind(tmp_path)
        for i in range(17):
            os.utime(cache.put(f"k{i:02}", b"x"), (i, i))
        digest = hashlib.sha256(b"x").hexdigest()
        expected = [cache.path_for(f"k{i:02}", digest).name for i in range(1, 17)]
        assert sorted(p.name for p in cache.entries.iterdir()) == expected

    def test_keeps_16_requirements_folders(self, tmp_path: Path) -> None:
        from hatch_component_init.hatch.requirements import _prune

        for i in range(17):
            (tmp_path / f"r{i:02}").mkdir()
            os.utime(tmp_path / f"r{i:02}", (i, i))
        _prune(tmp_path, keep=tmp_path / "r16")
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"r{i:02}" for i in range(1, 17)]


HIT_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from hatch_component_init.hatch.cache import SnapshotCache, default_cache_dir
from hatch_component_init.hatch.keys import snapshot_key
from hatch_component_init.hatch.component_init import ComponentInitBuildHook

root = Path(sys.argv[1])
config = {"component": "build/app.wasm", "destination": "pkg/app.wasm"}
hook = ComponentInitBuildHook(str(root), config, None, None, str(root), "wheel")
key = snapshot_key((root / "build" / "app.wasm").read_bytes(), hook.init_options)
entry = SnapshotCache(default_cache_dir()).put(key, b"snapshot")
build_data = {"force_include": {}, "build_hooks": ("component-init",), "artifacts": []}
hook.initialize("standard", build_data)
((staged, destination),) = build_data["force_include"].items()
# A hard link the build owns (another build's pruning cannot remove it), outside the cache.
assert destination == "pkg/app.wasm" and Path(staged).parent != entry.parent, build_data
assert Path(staged).read_bytes() == b"snapshot" and Path(staged).stat().st_ino == entry.stat().st_ino
print(sorted(name for name in sys.modules if name == "wasmtime" or name.startswith("wasmtime.")))
"""


def test_a_hit_does_not_load_wasmtime(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "app.wasm").write_bytes(b"\0asm\x0d\0\x01\0 not run: the cache answers")
    env = {**os.environ, "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("HATCH_COMPONENT_INIT_SKIP", None)
    done = subprocess.run(
        [sys.executable, "-c", HIT_IN_A_FRESH_PROCESS, str(tmp_path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_hit_of_18_mb_component_skips_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Speed is measured in bench/ (never asserted here); what a test can prove is that a hit
    # never reaches the engine: pre_initialize_unchecked is made to fail loudly if it is called.
    import hatch_component_init.api as api

    def engine_called(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a cache hit ran the engine")

    monkeypatch.setattr(api, "pre_initialize_unchecked", engine_called)
    monkeypatch.setenv("HATCH_COMPONENT_INIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HATCH_COMPONENT_INIT_SKIP", raising=False)
    (tmp_path / "build").mkdir()
    component = os.urandom(18 * 1024 * 1024)
    (tmp_path / "build" / "app.wasm").write_bytes(component)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "words.txt").write_bytes(os.urandom(400 * 1024))
    config = {"component": "build/app.wasm", "destination": "pkg/app.wasm", "dirs": {"data": "/data"}}

    def new_hook() -> ComponentInitBuildHook:
        return ComponentInitBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel")

    key = snapshot_key(component, new_hook().init_options)
    entry = SnapshotCache(tmp_path / "cache").put(key, b"snapshot")

    def hit() -> float:
        build_data: dict[str, object] = {"force_include": {}, "build_hooks": ("component-init",), "artifacts": []}
        started = time.perf_counter()
        new_hook().initialize("standard", build_data)
        elapsed = time.perf_counter() - started
        ((staged, destination),) = build_data["force_include"].items()  # type: ignore[attr-defined]
        assert destination == "pkg/app.wasm" and Path(staged).stat().st_ino == entry.stat().st_ino
        return elapsed

    best = min(hit() for _ in range(3))
    print(f"cache hit: {best * 1000:.1f} ms (not asserted; see bench/)")

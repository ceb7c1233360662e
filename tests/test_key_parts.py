"""The small parts keys are made of: digests of files and trees (hatch/digests.py) and the imports manifest
(hatch/app_manifest.py), each rule on a real small tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hatch_component_init.file_cache import file_digest
from hatch_component_init.hatch import app_manifest
from hatch_component_init.hatch.app_manifest import manifest_path, read_manifest, record_imports
from hatch_component_init.hatch.digests import path_digest, tree_digest


def test_a_linked_directory_counts_by_where_it_points(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link").symlink_to(tmp_path / "a")
    before = tree_digest(tree)
    assert tree_digest(tree, with_dirs=False) == before  # a link is no directory of the tree
    (tree / "link").unlink()
    (tree / "link").symlink_to(tmp_path / "b")
    assert tree_digest(tree) != before


def test_directories_count_unless_left_out(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    before, without = tree_digest(tmp_path), tree_digest(tmp_path, with_dirs=False)
    (tmp_path / "empty").mkdir()
    assert tree_digest(tmp_path) != before
    assert tree_digest(tmp_path, with_dirs=False) == without


def test_a_dangling_link_counts_by_its_name(tmp_path: Path) -> None:
    before = tree_digest(tmp_path)
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    named = tree_digest(tmp_path)
    assert named != before
    (tmp_path / "gone").unlink()
    (tmp_path / "gone").symlink_to(tmp_path / "elsewhere")
    assert tree_digest(tmp_path) == named


def test_skip_leaves_out_files_and_whole_directories(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    before = tree_digest(tmp_path, lambda path, is_dir: os.path.basename(path).startswith("skip"))
    (tmp_path / "skip.txt").write_text("y")
    (tmp_path / "skipdir").mkdir()
    (tmp_path / "skipdir" / "inner.txt").write_text("z")
    assert tree_digest(tmp_path, lambda path, is_dir: os.path.basename(path).startswith("skip")) == before
    # Given as the walk gives it: the root joined with the relative path, and whether it is a directory.
    seen: list[tuple[str, bool]] = []
    tree_digest(tmp_path, lambda path, is_dir: seen.append((path, is_dir)) or False)
    assert (os.path.join(tmp_path, "skipdir"), True) in seen
    assert (os.path.join(tmp_path, "skipdir", "inner.txt"), False) in seen


def test_a_rule_gives_a_files_digest_or_leaves_it_to_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    rule = lambda path: "same" if path.endswith("a.txt") else None  # noqa: E731
    before = tree_digest(tmp_path, rule=rule)
    (tmp_path / "a.txt").write_text("changed")
    assert tree_digest(tmp_path, rule=rule) == before
    (tmp_path / "b.txt").write_text("changed")
    assert tree_digest(tmp_path, rule=rule) != before
    assert path_digest(tmp_path / "a.txt", rule=rule) == "same"
    assert path_digest(tmp_path / "b.txt", rule=rule) == file_digest(str(tmp_path / "b.txt"))
    assert path_digest(tmp_path / "b.txt") == file_digest(str(tmp_path / "b.txt"))
    assert path_digest(tmp_path / "nothing") == "missing"
    assert path_digest(tmp_path, rule=rule) == tree_digest(tmp_path, rule=rule)


def test_the_manifest_keeps_the_latest_sets_only(tmp_path: Path) -> None:
    path = manifest_path(tmp_path, "0" * 64)
    for n in range(app_manifest.MAX_SETS + 2):
        record_imports(path, {f"m{n}"})
    assert read_manifest(path) == [[f"m{n}"] for n in reversed(range(2, app_manifest.MAX_SETS + 2))]


def test_manifests_beyond_the_limit_are_pruned_least_recently_used_first(tmp_path: Path) -> None:
    directory = tmp_path / app_manifest.MANIFESTS_DIR
    directory.mkdir()
    for n in range(app_manifest.MAX_MANIFESTS):
        old = directory / f"{n:064x}.json"
        old.write_text('{"imports": [["a"]]}')
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    read_manifest(directory / f"{0:064x}.json")  # read: recently used
    record_imports(manifest_path(tmp_path, "f" * 64), {"b"})
    left = sorted(path.name for path in directory.iterdir())
    assert len(left) == app_manifest.MAX_MANIFESTS
    assert f"{1:064x}.json" not in left and f"{0:064x}.json" in left and f"{'f' * 64}.json" in left


def test_a_manifest_not_of_ours_is_empty(tmp_path: Path) -> None:
    path = manifest_path(tmp_path, "0" * 64)
    path.parent.mkdir()
    for text in ("[1, 2]", '{"imports": "a"}', '{"other": []}', "\xff"):
        path.write_text(text)
        assert read_manifest(path) == []
    path.write_text(json.dumps({"imports": [["a"], "b", ["c"]]}))
    assert read_manifest(path) == [["a"], ["c"]]

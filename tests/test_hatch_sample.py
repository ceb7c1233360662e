"""sample_project builds with both hooks and its runner works from the built wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent.parent / "sample_project"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("snapshot_cache_dir")]


def test_sample_wheel_runs(tmp_path: Path, sample_wheel: tuple[Path, str]) -> None:
    wheel, log = sample_wheel
    assert "[guest stdout] lexicon: indexed 57476 words" in log

    # Platform-tagged: the sample ships its precompiled component (`precompile = true`).
    assert not wheel.name.endswith("-any.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "lexicon", "listen"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    # The guest printed at run time (from the snapshot), and found the anagrams without running init.
    assert lines[0] == "lexicon: 3 anagram(s) of 'listen'"
    assert "listen: anagrams: enlist, silent, tinsel; one edit away: glisten," in result.stdout
    assert "indexed" not in result.stdout
    assert "start-up (pre-initialized component):" in result.stdout
    assert "init 0 ms" in result.stdout


def test_run_sh_builds_installs_and_runs_the_sample(tmp_path: Path, sample_wheel: tuple[Path, str]) -> None:
    """`sh sample_project/run.sh`, as its README says, on a copy of the checkout (it writes a venv and dist/).

    Its hooks start from a copy of the caches the session's sample build left, so componentize-py, init and
    the precompile are hits here (30 s of CPU saved): the same steps run cold, without build isolation as
    here, in test_hatch_damaged_cache.py, and the script's own steps (venv, install, sdist then wheel, the
    three starts) all run."""
    wheel, _ = sample_wheel
    cache = tmp_path / "hook-cache"
    shutil.copytree(wheel.parents[2] / "hook-cache", cache)
    checkout = tmp_path / "checkout"
    shutil.copytree(
        SAMPLE.parent,
        checkout,
        ignore=shutil.ignore_patterns(".git", ".venv", "dist", "build", "__pycache__", "*.egg-info", ".pytest_cache", "work"),
    )
    result = subprocess.run(
        ["sh", str(checkout / "sample_project" / "run.sh")],
        env={**os.environ, "PYTHON": sys.executable, "HATCH_COMPONENT_INIT_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "==> Installing the wheel" in out
    # Three starts, each answering: the precompiled code, a compile of the shipped component, and the comparison.
    assert out.count("listen: anagrams: enlist, silent, tinsel;") == 2
    assert "loaded: precompiled lexicon.cwasm" in out and "loaded: compiled lexicon.wasm" in out
    assert "pre-initialization makes start-up" in out
    (wheel,) = (checkout / "sample_project" / "dist").glob("lexicon-0.1.0-py3-none-*.whl")
    assert not wheel.name.endswith("-any.whl")

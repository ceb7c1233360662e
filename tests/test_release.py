"""Releasing (docs/releasing.md): the example workflow, our own release workflow, and the wheels a release publishes.

Quick: both workflow files are valid GitHub workflows (check-jsonschema's vendored
schema) and keep the promises the page makes about them (which runners, which
switch, which caches and when, how publishing is authorised).

Slow: the Linux job's `run:` steps build the sample (the session's `sample_wheel`
is built by them, see conftest.py); both build jobs' steps build a small project
whose component is written in WAT, and a wheelhouse holding its platform wheel,
its universal wheel and its sdist is installed from the way pip does on each platform.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hatch_support import build_own_wheel, find_links_env, run_build
from wat_support import wat
from workflow_support import EXAMPLE_WORKFLOW, OWN_WORKFLOW, REPO, load, run_job, run_steps

from hatch_component_init.hatch.precompile import wheel_tag
from hatch_component_init.versions import wasmtime_version

PAGE = REPO / "docs" / "releasing.md"


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert found, "check-jsonschema is not installed (the `test` extra installs it)"
    return found


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


# -- quick: the files --------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", [EXAMPLE_WORKFLOW, OWN_WORKFLOW], ids=["example", "own"])
def test_workflow_is_valid_for_github(workflow: Path) -> None:
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_refuses_an_invalid_workflow(tmp_path: Path) -> None:
    """The check above can fail: a job without `runs-on` is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(EXAMPLE_WORKFLOW.read_text().replace("    runs-on: ubuntu-24.04\n", "", 1))
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(broken)], capture_output=True, text=True
    )
    assert result.returncode != 0


def test_the_page_shows_the_example_workflow_as_it_is() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", PAGE.read_text(), re.M | re.S)
    assert EXAMPLE_WORKFLOW.read_text() in blocks


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return load(EXAMPLE_WORKFLOW)


@pytest.fixture(scope="module")
def own() -> dict[str, Any]:
    return load(OWN_WORKFLOW)


@pytest.fixture
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The workflow of the test's class: its `WORKFLOW` fixture's name."""
    return request.getfixturevalue(request.cls.WORKFLOW)


class TestExampleWorkflow:
    WORKFLOW = "example"

    def test_runs_on_tags_and_pull_requests_only(self, workflow: dict[str, Any]) -> None:
        # PyYAML reads the key `on` as True.
        triggers = workflow[True]
        assert set(triggers) == {"push", "pull_request"}
        assert triggers["push"] == {"tags": ["v*"]}
        assert workflow["permissions"] == {"contents": "read"}

    def test_a_native_runner_per_platform(self, workflow: dict[str, Any]) -> None:
        job = workflow["jobs"]["platform-wheel"]
        assert job["strategy"]["matrix"]["runner"] == [
            "ubuntu-24.04", "ubuntu-24.04-arm", "macos-15", "macos-15-intel", "windows-2025"
        ]  # fmt: skip
        assert job["runs-on"] == "${{ matrix.runner }}"
        assert [step.run for step in run_steps(EXAMPLE_WORKFLOW, "platform-wheel")] == [
            "python -m pip install build",
            "python -m build --wheel --outdir dist",
        ]

    def test_the_universal_job_switches_precompile_off(self, workflow: dict[str, Any]) -> None:
        (build,) = [step for step in run_steps(EXAMPLE_WORKFLOW, "sdist-and-universal-wheel") if "build --" in step.run]
        assert build.run == "python -m build --outdir dist"  # the sdist, then the wheel from it
        assert build.env["HATCH_COMPONENT_INIT_PRECOMPILE"] == "0"
        for job in ("platform-wheel", "sdist-and-universal-wheel"):
            for step in run_steps(EXAMPLE_WORKFLOW, job):
                if "build --" in step.run:
                    assert step.env["HATCH_COMPONENT_INIT_CACHE_DIR"] == "${{ runner.temp }}/hook-cache"

    def test_caches_are_read_and_written_by_tag_pushes_only(self, workflow: dict[str, Any]) -> None:
        cache_steps = [
            step for job in workflow["jobs"].values() for step in job["steps"] if uses(step).startswith("actions/cache")
        ]
        assert {uses(step) for step in cache_steps} == {"actions/cache/restore", "actions/cache/save"}
        assert len(cache_steps) == 4
        for step in cache_steps:
            assert step["if"] == "github.event_name == 'push'"
            assert step["with"]["path"] == "${{ runner.temp }}/hook-cache"
            # The tag and the commit in the key, and no prefix match: only an entry this tag's runs wrote.
            assert "${{ github.ref }}-${{ github.sha }}" in step["with"]["key"]
            assert "restore-keys" not in step["with"]
        # The only pushes that run the workflow are tags (see above); no trigger runs in the base repository's
        # context for a fork's code.
        assert "pull_request_target" not in workflow[True] and "workflow_run" not in workflow[True]

    def test_publishes_with_trusted_publishing_after_both_builds(self, workflow: dict[str, Any]) -> None:
        jobs = workflow["jobs"]
        publish = jobs["publish"]
        assert publish["if"] == "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')"
        assert publish["needs"] == ["platform-wheel", "sdist-and-universal-wheel"]
        assert publish["permissions"] == {"id-token": "write"}
        assert publish["environment"] == "pypi"
        (step,) = [step for step in publish["steps"] if uses(step) == "pypa/gh-action-pypi-publish"]
        assert "with" not in step  # no password: the OpenID Connect token is the credential
        # Only the publishing job may ask for a token.
        assert [name for name, job in jobs.items() if "id-token" in job.get("permissions", {})] == ["publish"]
        for job in jobs.values():
            for step in job["steps"]:
                if uses(step) == "actions/checkout":
                    assert step["with"]["persist-credentials"] is False


class TestOwnWorkflow:
    WORKFLOW = "own"

    def test_builds_tests_the_built_wheel_then_publishes(self, workflow: dict[str, Any]) -> None:
        assert workflow[True] == {"push": {"tags": ["v*"]}}
        jobs = workflow["jobs"]
        assert [step.run for step in run_steps(OWN_WORKFLOW, "build")][-1] == "python -m build --outdir dist"
        test_runs = "\n".join(step.run for step in run_steps(OWN_WORKFLOW, "test"))
        # The wheel from `build`, with the test extra; pytest run as a script, so that the checkout's own
        # package directory is not on sys.path (`python -m pytest` would put it there, first).
        assert 'pip install "$(ls dist/*.whl)[test]"' in test_runs
        assert "\n.venv/bin/pytest" in "\n" + test_runs and "-m pytest" not in test_runs
        assert jobs["test"]["needs"] == "build"
        assert jobs["publish"]["needs"] == "test"
        assert jobs["publish"]["permissions"] == {"id-token": "write"}
        assert [uses(step) for step in jobs["publish"]["steps"]][-1] == "pypa/gh-action-pypi-publish"


# -- slow: the steps, run ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_linux_job_builds_the_sample_precompiled_wheel(sample_wheel: tuple[Path, str]) -> None:
    wheel, log = sample_wheel
    # conftest.py's `sample_wheel` is built by the job's steps: an isolated build, as on the runner.
    assert "# step: Install the build frontend" in log and "# step: Build the precompiled wheel" in log
    assert "Creating isolated environment" in log
    assert wheel.name == f"lexicon-0.1.0-{wheel_tag()}.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert {"lexicon/lexicon.wasm", "lexicon/lexicon.cwasm", "lexicon/_component.py"} <= set(archive.namelist())


@pytest.mark.slow
def test_a_rebuild_with_the_hook_caches_is_byte_identical(sample_wheel: tuple[Path, str], tmp_path: Path) -> None:
    """docs/releasing.md, Reproducibility: the Linux job run again on the same sources, with the hook caches the
    first run left (a re-run of a release restores them), hits every cache and makes the same wheel."""
    wheel, _ = sample_wheel
    folder = wheel.parent.parent.parent  # the session build's `runner.temp`: its `hook-cache/` and our wheel
    project = tmp_path / "sample"
    shutil.copytree(
        REPO / "sample_project", project, ignore=shutil.ignore_patterns(".venv", "dist", "build", "__pycache__", "*.wasm")
    )
    log = run_job(
        EXAMPLE_WORKFLOW, "platform-wheel", cwd=project, contexts={"runner.temp": str(folder)},
        env={**find_links_env(folder / "own-wheel"), "HATCH_COMPONENT_INIT_SKIP": ""},
    )  # fmt: skip
    assert "Built component `build/lexicon.wasm` from the cache" in log, log[-3000:]
    assert "by running `component-init`" not in log  # no init run: the snapshot came from the cache
    (again,) = (project / "dist").glob("lexicon-0.1.0-*.whl")
    assert again.read_bytes() == wheel.read_bytes()


#: Init stores 42 in a global that `answer` returns.
APP_WAT = """
(component
  (core module $m
    (global $answer (mut i32) (i32.const 0))
    (func (export "init") (global.set $answer (i32.const 42)))
    (func (export "answer") (result i32) (global.get $answer)))
  (core instance $i (instantiate $m))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"""

PYPROJECT = """\
[build-system]
requires = ["hatchling", "hatch-component-init"]
build-backend = "hatchling.build"

[project]
name = "answer"
version = "1.0"
requires-python = ">=3.11"
dependencies = ["wasmtime>=50,<51"]

[tool.hatch.build.targets.wheel]
packages = ["answer"]

[tool.hatch.build.hooks.component-init]
component = "component/answer.wasm"
destination = "answer/answer.wasm"
precompile = true
loader = "answer/_component.py"
"""

#: Loads the installed package's component through its loader and calls `answer`.
ANSWER = """
import json, wasmtime
from wasmtime.component import Linker
from answer._component import load
loaded = load()
store = wasmtime.Store(loaded.engine)
instance = Linker(loaded.engine).instantiate(store, loaded.component)
print(json.dumps({"answer": instance.get_func(store, "answer")(store), "how": loaded.how}))
"""

RELEASE_GROUP = pytest.mark.xdist_group("release")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheelhouse: what both build jobs of the example workflow built for the `answer` project, and wasmtime."""
    root = tmp_path_factory.mktemp("release")
    own = build_own_wheel(root / "own").parent
    wheelhouse = root / "wheelhouse"
    for job in ("platform-wheel", "sdist-and-universal-wheel"):
        project = root / job / "answer"
        (project / "answer").mkdir(parents=True)
        (project / "answer" / "__init__.py").write_text("")
        (project / "component").mkdir()
        (project / "component" / "answer.wasm").write_bytes(wat(APP_WAT))
        (project / "pyproject.toml").write_text(PYPROJECT)
        log = run_job(
            EXAMPLE_WORKFLOW, job, cwd=project, contexts={"runner.temp": str(root / job)},
            env={**find_links_env(own), "HATCH_COMPONENT_INIT_SKIP": ""},
        )  # fmt: skip
        (root / f"{job}.log").write_text(log)
        shutil.copytree(project / "dist", wheelhouse, dirs_exist_ok=True)
    run_build(
        [sys.executable, "-m", "pip", "download", f"wasmtime=={wasmtime_version()}", "--no-deps",
         "--only-binary=:all:", "--dest", str(wheelhouse)],
        cwd=root,
    )  # fmt: skip
    return wheelhouse


def fresh_venv(directory: Path) -> Path:
    run_build([sys.executable, "-m", "venv", "--without-pip", str(directory)], cwd=directory.parent)
    return directory / "bin" / "python"


def pip_into(python: Path, *args: str) -> str:
    return run_build([sys.executable, "-m", "pip", "--python", str(python), *args], cwd=python.parent)


def answer(python: Path, home: Path) -> dict[str, object]:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(python), "-c", ANSWER], env=env, cwd=home.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@RELEASE_GROUP
@pytest.mark.skipif(sys.platform != "linux", reason="the platform wheel of this test is built on Linux")
class TestWheelhouse:
    def test_the_jobs_build_a_platform_wheel_an_sdist_and_a_universal_wheel(self, released: Path) -> None:
        assert sorted(path.name for path in released.glob("answer-*")) == sorted(
            [f"answer-1.0-{wheel_tag()}.whl", "answer-1.0-py3-none-any.whl", "answer-1.0.tar.gz"]
        )
        log = (released.parent / "sdist-and-universal-wheel.log").read_text()
        assert "HATCH_COMPONENT_INIT_PRECOMPILE=0: `precompile` is ignored, this is a universal wheel" in log
        with zipfile.ZipFile(released / "answer-1.0-py3-none-any.whl") as archive:
            names = set(archive.namelist())
        assert {"answer/answer.wasm", "answer/_component.py"} <= names and "answer/answer.cwasm" not in names

    def test_pip_installs_the_platform_wheel_here_and_it_starts_precompiled(self, released: Path, tmp_path: Path) -> None:
        python = fresh_venv(tmp_path / "venv")
        out = pip_into(python, "install", "--no-index", "--find-links", str(released), "answer")
        assert f"answer-1.0-{wheel_tag()}.whl" in out or "Successfully installed" in out
        site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
        (wheel_file,) = site.glob("answer-1.0.dist-info/WHEEL")
        assert f"Tag: {wheel_tag()}" in wheel_file.read_text()
        assert answer(python, tmp_path / "home") == {"answer": 42, "how": "precompiled answer.cwasm"}

    @pytest.mark.parametrize("platform", ["macosx_11_0_arm64", "win_amd64", "musllinux_1_2_x86_64", "win_arm64"])
    def test_other_platforms_get_the_universal_wheel(self, released: Path, tmp_path: Path, platform: str) -> None:
        run_build(
            [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--platform", platform, "--no-deps",
             "--no-index", "--find-links", str(released), "--dest", str(tmp_path / "got"), "answer==1.0"],
            cwd=tmp_path,
        )  # fmt: skip
        assert [path.name for path in (tmp_path / "got").iterdir()] == ["answer-1.0-py3-none-any.whl"]

    def test_the_universal_wheel_installs_and_answers(self, released: Path, tmp_path: Path) -> None:
        python = fresh_venv(tmp_path / "venv")
        pip_into(python, "install", "--no-index", "--find-links", str(released), str(released / "answer-1.0-py3-none-any.whl"))
        got = answer(python, tmp_path / "home")
        assert got == {"answer": 42, "how": "compiled answer.wasm (no precompiled component was built)"}

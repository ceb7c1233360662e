"""The componentize-py cache key: what changes it, what does not, and where componentize-py looks for packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hatch_component_init.hatch import app_key
from hatch_component_init.hatch.app_key import componentize_key, componentize_site_dirs, site_dir_digest
from hatch_component_init.hatch.requirements import requirements_key


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A project with an app, a data file, WIT, and an (empty) virtual environment for componentize-py."""
    root = tmp_path / "project"
    (root / "wit").mkdir(parents=True)
    (root / "wit" / "world.wit").write_text("package demo:app;\nworld app { export run: func(); }\n")
    (root / "app.py").write_text("import helper\n")
    (root / "helper.py").write_text("WORDS = open('words.txt').read()\n")
    (root / "words.txt").write_text("one two\n")
    return root


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """What componentize-py reads through $VIRTUAL_ENV: the first site-packages under lib/."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    dist_info = site / "tinyword-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (site / "tinyword.py").write_text("WORD = 'hi'\n")
    (dist_info / "METADATA").write_text("Name: tinyword\nVersion: 1.0\n")
    (dist_info / "INSTALLER").write_text("pip\n")
    (dist_info / "RECORD").write_text(
        "tinyword.py,sha256=AAAA,12\n"
        "tinyword-1.0.dist-info/METADATA,sha256=BBBB,30\n"
        "tinyword-1.0.dist-info/INSTALLER,sha256=CCCC,4\n"
        "tinyword-1.0.dist-info/RECORD,,\n"
        "../../../bin/tinyword,sha256=DDDD,50\n"
    )
    return tmp_path / "venv"


def key(root: Path, venv: Path, **changes: object) -> str:
    arguments: dict[str, object] = {
        "root": root,
        "wit": "wit",
        "world": "app",
        "module": "app",
        "python_path": ["."],
        "requirements": None,
        "excluded": [root / "build" / "app.wasm", root / "dist"],
        "env": {"VIRTUAL_ENV": str(venv), "PATH": os.environ.get("PATH", "")},
    }
    arguments.update(changes)
    return componentize_key(**arguments)  # type: ignore[arg-type]


class TestChanges:
    """Each of these can change the component, so each must change the key."""

    def test_stable(self, app: Path, venv: Path) -> None:
        assert key(app, venv) == key(app, venv)

    @pytest.mark.parametrize(
        "edit",
        [
            lambda root: (root / "app.py").write_text("import helper  # edited\n"),
            lambda root: (root / "helper.py").write_text("WORDS = ''\n"),
            # Read by the app's top-level code at build time, so baked into the component.
            lambda root: (root / "words.txt").write_text("one two three\n"),
            lambda root: (root / "new_module.py").write_text(""),
            lambda root: (root / "helper.py").rename(root / "helper2.py"),
            lambda root: (root / "pkg").mkdir() or (root / "pkg" / "__init__.py").write_text(""),
            lambda root: (root / "wit" / "world.wit").write_text("package demo:app;\nworld app {}\n"),
            # `build` is a directory like any other: only the output file itself is left out.
            lambda root: (root / "build").mkdir() or (root / "build" / "other.py").write_text(""),
        ],
        ids=["app", "module", "data", "new-file", "rename", "new-package", "wit", "build-dir-file"],
    )
    def test_files(self, app: Path, venv: Path, edit) -> None:  # type: ignore[no-untyped-def]
        before = key(app, venv)
        edit(app)
        assert key(app, venv) != before

    @pytest.mark.parametrize(
        "change",
        [
            {"world": "other"},
            {"world": None},
            {"module": "helper"},
            {"python_path": [".", "wit"]},
            {"wit": "wit/world.wit"},
            {"requirements": requirements_key(["idna>=3"])},
        ],
    )
    def test_options(self, app: Path, venv: Path, change: dict[str, object]) -> None:
        assert key(app, venv, **change) != key(app, venv)

    def test_requirements_strings(self, app: Path, venv: Path) -> None:
        one = key(app, venv, requirements=requirements_key(["idna>=3"]))
        assert key(app, venv, requirements=requirements_key(["idna>=3.7"])) != one

    def test_componentize_py_version(self, app: Path, venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        before = key(app, venv)
        monkeypatch.setattr(app_key, "componentize_py_version", lambda: "0.26.0")
        assert key(app, venv) != before

    @pytest.mark.parametrize(
        "edit",
        [
            lambda site: (site / "tinyword-1.0.dist-info" / "RECORD").write_text("tinyword.py,sha256=EEEE,12\n"),
            lambda site: (site / "another.py").write_text(""),
            lambda site: (site / "other-2.0.dist-info").mkdir(),
            lambda site: (site / "extra.pth").write_text("/somewhere\n"),
        ],
        ids=["file-hash", "loose-module", "new-distribution", "pth"],
    )
    def test_site_packages(self, app: Path, venv: Path, edit) -> None:  # type: ignore[no-untyped-def]
        before = key(app, venv)
        edit(venv / "lib" / "python3.11" / "site-packages")
        assert key(app, venv) != before


class TestNoChange:
    """Each of these leaves the component alone, so a rebuild must still hit."""

    @pytest.mark.parametrize(
        "edit",
        [
            lambda root: (root / "__pycache__").mkdir() or (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x"),
            lambda root: (root / ".git").mkdir() or (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n"),
            lambda root: (root / ".hg").mkdir() or (root / ".hg" / "dirstate").write_text("x"),
            lambda root: (root / ".venv" / "lib").mkdir(parents=True) or (root / ".venv" / "pyvenv.cfg").write_text(""),
            lambda root: (root / "env").mkdir() or (root / "env" / "pyvenv.cfg").write_text("home = /x\n"),
            lambda root: (root / ".pytest_cache").mkdir() or (root / ".pytest_cache" / "v").write_text("x"),
            # The build's own outputs: the component, its directory, and the wheels in dist/.
            lambda root: (root / "build").mkdir() or (root / "build" / "app.wasm").write_bytes(b"\0asm"),
            lambda root: (root / "dist").mkdir() or (root / "dist" / "app-1.0-py3-none-any.whl").write_bytes(b"PK"),
            lambda root: os.utime(root / "app.py", (0, 0)),
        ],
        ids=["pycache", "git", "hg", "dot-venv", "named-venv", "tool-cache", "output", "dist", "timestamp"],
    )
    def test_ignored(self, app: Path, venv: Path, edit) -> None:  # type: ignore[no-untyped-def]
        before = key(app, venv)
        edit(app)
        assert key(app, venv) == before

    def test_project_moved(self, app: Path, venv: Path, tmp_path: Path) -> None:
        # `python -m build` and `pip wheel` build in a fresh temp copy each time.
        before = key(app, venv)
        moved = shutil.copytree(app, tmp_path / "elsewhere")
        assert key(moved, venv, excluded=[]) == before

    def test_venv_moved_and_reinstalled(self, app: Path, venv: Path, tmp_path: Path) -> None:
        # An isolated build installs the same packages into a new temp environment each time; the
        # installer's bookkeeping and the scripts (which name that environment) differ, the files do not.
        before = key(app, venv)
        other = Path(shutil.copytree(venv, tmp_path / "other-venv"))
        dist_info = other / "lib" / "python3.11" / "site-packages" / "tinyword-1.0.dist-info"
        (dist_info / "INSTALLER").write_text("uv\n")
        record = (dist_info / "RECORD").read_text().replace("CCCC,4", "FFFF,3").replace("DDDD,50", "GGGG,61")
        (dist_info / "RECORD").write_text(record)
        assert key(app, other) == before


class TestSiteDirs:
    """componentize-py 0.25 appends one site directory to the python path; the key must look at the same one."""

    def test_virtual_env(self, venv: Path) -> None:
        assert componentize_site_dirs({"VIRTUAL_ENV": str(venv)}) == [
            (venv / "lib" / "python3.11" / "site-packages").resolve()
        ]

    def test_virtual_env_without_site_packages(self, tmp_path: Path) -> None:
        assert componentize_site_dirs({"VIRTUAL_ENV": str(tmp_path)}) == []

    def test_python3_on_path(self, tmp_path: Path) -> None:
        # Without $VIRTUAL_ENV (and pipenv), it asks the `python3` on PATH, not the Python running the build.
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(sys.executable)
        env = {"PATH": str(bin_dir)}
        code = "import site; print(';'.join([site.getusersitepackages(), *site.getsitepackages()]))"
        python3 = str(bin_dir / "python3")
        expected = subprocess.run([python3, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert componentize_site_dirs(env) == [Path(p) for p in expected.stdout.strip().split(";")]

    def test_no_python3(self, tmp_path: Path) -> None:
        assert componentize_site_dirs({"PATH": str(tmp_path)}) == []

    def test_digest_of_missing_dir(self, tmp_path: Path) -> None:
        assert site_dir_digest(tmp_path / "nope") == "missing"


def test_pipenv_environment(tmp_path: Path) -> None:
    # Without $VIRTUAL_ENV, componentize-py asks `pipenv --venv` before it falls back to `python3`.
    site = tmp_path / "pipenv-env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pipenv = bin_dir / "pipenv"
    pipenv.write_text(f"#!/bin/sh\necho {tmp_path / 'pipenv-env'}\n")
    pipenv.chmod(0o755)
    assert componentize_site_dirs({"PATH": str(bin_dir)}) == [site.resolve()]


def test_environment_markers_and_caches(app: Path, venv: Path) -> None:
    before = key(app, venv)
    (app / "conda-env" / "conda-meta").mkdir(parents=True)
    (app / "conda-env" / "module.py").write_text("")
    for name in app_key.SKIPPED_DIR_NAMES:
        (app / "pkg" / name).mkdir(parents=True, exist_ok=True)  # at any depth
        (app / "pkg" / name / "module.py").write_text("")
    (app / "pkg").rename(app / "pkg2")  # (an empty package directory is not part of the key either)
    assert key(app, venv) == before
    assert sorted(app_key.SKIPPED_DIR_NAMES) == sorted(
        [".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", "__pycache__", ".pytest_cache", ".mypy_cache",
         ".ruff_cache", ".tox", ".nox", ".hypothesis"]
    )  # fmt: skip  (docs/building.md lists these)


def test_hook_outputs_are_left_out(tmp_path: Path) -> None:
    """What the hooks and the builder write into the project is not part of the key."""
    from hatchling.builders.wheel import WheelBuilder

    from hatch_component_init.hatch.componentize import ComponentizePyBuildHook

    root = tmp_path / "p"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "1"\n[tool.hatch.build.targets.wheel]\npackages = ["pkg"]\n'
        '[tool.hatch.build.hooks.componentize-py]\nmodule = "app"\noutput = "build/app.wasm"\n'
        '[tool.hatch.build.hooks.component-init]\ncomponent = "build/app.wasm"\n'
        'destination = "pkg/app.wasm"\nloader = "pkg/_component.py"\n'
    )
    config = WheelBuilder(str(root)).config
    hook = ComponentizePyBuildHook(
        str(root), config.hook_config["componentize-py"], config, None, str(root / "out"), "wheel"
    )
    outputs = set(hook.build_outputs(tmp_path / "cache"))
    assert {
        root / "build" / "app.wasm",
        root / "dist",
        root / "out",
        tmp_path / "cache",
        root / "pkg" / "app.wasm",
        root / "pkg" / "_component.py",
    } <= outputs


def test_the_projects_own_install_is_left_out(tmp_path: Path) -> None:
    """An editable install of the project adds its dist-info and `.pth`: the same app, the same key."""
    site = tmp_path / "site-packages"
    (site / "other-2.0.dist-info").mkdir(parents=True)
    (site / "other-2.0.dist-info" / "RECORD").write_text("other/__init__.py,sha256=x,1\n")
    before = site_dir_digest(site, "My.Project")
    (site / "my_project-1.0.dist-info").mkdir()
    (site / "my_project-1.0.dist-info" / "RECORD").write_text("_my_project.pth,sha256=y,1\n")
    (site / "_my_project.pth").write_text("/src/my-project\n")
    (site / "_editable_impl_my_project.pth").write_text("import _editable_impl_my_project\n")
    assert site_dir_digest(site, "My.Project") == before
    # The target's `force-include` files come with an editable wheel too: installed under the package's name.
    (site / "my_project" / "data").mkdir(parents=True)
    (site / "my_project" / "data" / "words.txt").write_text("apple\n")
    assert site_dir_digest(site, "My.Project") != before
    (site / "my_project-1.0.dist-info" / "RECORD").write_text(
        "_my_project.pth,sha256=y,1\nmy_project/data/words.txt,sha256=z,6\n../../../bin/my-project,sha256=w,9\n"
    )
    assert site_dir_digest(site, "My.Project") == before
    # Another project's install (or any project, when none is named) still counts.
    assert site_dir_digest(site) != site_dir_digest(tmp_path / "site-packages", "other")
    (site / "_other.pth").write_text("/src/other\n")
    assert site_dir_digest(site, "My.Project") != before

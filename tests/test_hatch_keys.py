"""The componentize-py cache key: what changes it, what does not, and where componentize-py looks for packages.

The key has two parts (hatch/keys.py): the sources, known before the build,
and the `site-packages` entries the built component imported, as the
environment provides them at lookup. The components here hold those entries'
guest paths in their memory, as a componentize-py build's heap does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from wat_support import wat

from hatch_component_init.hatch import keys
from hatch_component_init.hatch.app_manifest import manifest_path, read_manifest, record_imports
from hatch_component_init.hatch.keys import (
    componentize_key,
    componentize_source_key,
    project_file_digest,
    requirements_key,
    site_mounts,
)
from hatch_component_init.hatch.site_packages import componentize_site_dirs, imported_tops, linked_distributions

PYPROJECT = """\
[project]
name = "demo"  # the app's own package
version = "1.0"

[tool.hatch.build.hooks.componentize-py]
wit = "wit"
module = "app"
output = "build/app.wasm"

[tool.hatch.build.hooks.component-init]
component = "build/app.wasm"
destination = "demo/app.wasm"
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A project with an app, a data file, WIT, and its pyproject.toml."""
    root = tmp_path / "project"
    (root / "wit").mkdir(parents=True)
    (root / "wit" / "world.wit").write_text("package demo:app;\nworld app { export run: func(); }\n")
    (root / "app.py").write_text("import helper\nimport tinyword\n")
    (root / "helper.py").write_text("WORDS = open('words.txt').read()\n")
    (root / "words.txt").write_text("one two\n")
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def _install(site: Path, name: str, version: str, files: dict[str, str]) -> None:
    """A distribution as an installer leaves it: its files, and a dist-info whose RECORD lists them."""
    dist_info = site / f"{name}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    rows = []
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
        rows.append(f"{path},sha256={abs(hash(text))},{len(text)}")
    (dist_info / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n")
    (dist_info / "INSTALLER").write_text("pip\n")
    rows += [
        f"{name}-{version}.dist-info/METADATA,sha256=BBBB,30",
        f"{name}-{version}.dist-info/INSTALLER,sha256=CCCC,4",
        f"{name}-{version}.dist-info/RECORD,,",
        f"../../../bin/{name},sha256=DDDD,50",
    ]
    (dist_info / "RECORD").write_text("\n".join(rows) + "\n")


def _uninstall(site: Path, name: str, version: str) -> None:
    dist_info = site / f"{name}-{version}.dist-info"
    for line in (dist_info / "RECORD").read_text().splitlines():
        path = site / line.split(",")[0]
        if not line.startswith("../") and path.is_file():
            path.unlink()
    shutil.rmtree(dist_info)


def site_of(venv: Path) -> Path:
    return venv / "lib" / "python3.11" / "site-packages"


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """What componentize-py reads through $VIRTUAL_ENV: the first site-packages under lib/, holding the
    package the app imports (tinyword) and the build frontend's (hatchling), which it does not."""
    site = site_of(tmp_path / "venv")
    _install(site, "tinyword", "1.0", {"tinyword.py": "WORD = 'hi'\n"})
    _install(site, "hatchling", "1.27.0", {"hatchling/__init__.py": "", "hatchling/build.py": "x = 1\n"})
    return tmp_path / "venv"


def component_holding(*strings: str, width: int = 1) -> bytes:
    """A real component whose memory holds ``strings`` (each NUL-terminated, ``width`` bytes a character)."""
    data = "".join(
        "".join(f"\\{byte:02x}" for byte in (text + "\0").encode("utf-32-le" if width == 4 else "utf-16-le" if width == 2 else "ascii"))
        for text in strings
    )
    return wat(
        f'(component (core module (memory (export "memory") 1) (data (i32.const 64) "{data}")) '
        "(core instance (instantiate 0)))"
    )


#: What a componentize-py build of `app` holds: the app at /0 (python-path "."), site-packages at /1.
BUILT = component_holding("/0/app.py", "/0/helper.py", "/1/tinyword.py", "/1/__pycache__/tinyword.cpython-314.pyc")


def key(root: Path, venv: Path, component: bytes = BUILT, **changes: object) -> str:
    """The full key of ``component`` built from ``root`` with ``venv`` as the environment, as the hook makes it."""
    site_dirs = componentize_site_dirs({"VIRTUAL_ENV": str(venv)})
    arguments: dict[str, object] = {
        "root": root,
        "wit": "wit",
        "world": "app",
        "module": "app",
        "python_path": ["."],
        "requirements": None,
        "excluded": [root / "build" / "app.wasm", root / "dist"],
        "site_dirs": site_dirs,
    }
    arguments.update(changes)
    source = componentize_source_key(**arguments)  # type: ignore[arg-type]
    mounts = site_mounts(root, arguments["python_path"], site_dirs)  # type: ignore[arg-type]
    return componentize_key(source, imported_tops(component, mounts), site_dirs, mounts)


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
        monkeypatch.setattr(keys, "componentize_py_version", lambda: "0.26.0")
        assert key(app, venv) != before

    @pytest.mark.parametrize(
        "edit",
        [
            # The package the component imported: upgraded, a file of it changed, removed, shadowed.
            lambda site: _uninstall(site, "tinyword", "1.0") or _install(site, "tinyword", "1.1", {"tinyword.py": "WORD = 'hi'\n"}),
            lambda site: (site / "tinyword-1.0.dist-info" / "RECORD").write_text("tinyword.py,sha256=EEEE,12\n"),
            lambda site: _uninstall(site, "tinyword", "1.0"),
            lambda site: _uninstall(site, "tinyword", "1.0") or (site / "tinyword.py").write_text("WORD = 'ho'\n"),
        ],
        ids=["upgraded", "file-hash", "removed", "now-loose"],
    )
    def test_imported_distribution(self, app: Path, venv: Path, edit) -> None:  # type: ignore[no-untyped-def]
        before = key(app, venv)
        edit(site_of(venv))
        assert key(app, venv) != before

    def test_imported_loose_module(self, app: Path, venv: Path) -> None:
        # A module no installer recorded counts by its bytes.
        (site_of(venv) / "loose.py").write_text("A = 1\n")
        component = component_holding("/0/app.py", "/1/loose.py")
        before = key(app, venv, component)
        (site_of(venv) / "loose.py").write_text("A = 2\n")
        assert key(app, venv, component) != before

    def test_another_import(self, app: Path, venv: Path) -> None:
        assert key(app, venv, component_holding("/1/tinyword.py", "/1/hatchling/__init__.py")) != key(app, venv)

    @pytest.mark.parametrize(
        "files",
        [{"wasm_ext/__init__.py": "", "wasm_ext/_speed.abi3.so": "\0asm\1\0\0\0"}, {"sdk/componentize-py.toml": ""}],
        ids=["wasm-extension", "componentize-py-toml"],
    )
    def test_linked_distribution(self, app: Path, venv: Path, files: dict[str, str]) -> None:
        # componentize-py links these in whether the app imports them or not.
        before = key(app, venv)
        _install(site_of(venv), "linked", "1.0", files)
        assert linked_distributions([site_of(venv)]) == [
            f"linked-1.0.dist-info:{linked_distributions([site_of(venv)])[0].split(':')[1]}"
        ]
        assert key(app, venv) != before

    def test_pyproject_meaning(self, app: Path, venv: Path) -> None:
        # The app's top level may read it: its project table, and any table but our hooks', count.
        before = key(app, venv)
        (app / "pyproject.toml").write_text(PYPROJECT.replace('version = "1.0"', 'version = "1.1"'))
        assert key(app, venv) != before
        (app / "pyproject.toml").write_text(PYPROJECT + "[tool.demo]\nwords = 3\n")
        assert key(app, venv) != before


class TestEnvironment:
    """What the build environment offers but the component did not import leaves the key alone."""

    @pytest.mark.parametrize(
        "edit",
        [
            lambda site: _install(site, "pip", "24.0", {"pip/__init__.py": ""}),
            lambda site: _uninstall(site, "hatchling", "1.27.0"),
            lambda site: _uninstall(site, "hatchling", "1.27.0") or _install(site, "hatchling", "1.28.0", {"hatchling/__init__.py": "y = 2\n"}),
            lambda site: (site / "extra.pth").write_text("/somewhere\n"),
            lambda site: (site / "another.py").write_text(""),
            # A host extension (not WebAssembly) is not linked in.
            lambda site: _install(site, "native", "1.0", {"native/_speed.abi3.so": "\x7fELF"}),
            # The project's own editable install: its `.pth`, and the target's `force-include` files
            # under its package's name (the app imports that package from the project, mounted first).
            lambda site: _install(site, "demo", "1.0", {"_demo.pth": "/src/demo\n", "demo/app.wasm": "\0asm"}),
        ],
        ids=["added", "removed", "upgraded", "pth", "loose-module", "host-extension", "own-install"],
    )
    def test_not_imported(self, app: Path, venv: Path, edit) -> None:  # type: ignore[no-untyped-def]
        before = key(app, venv)
        edit(site_of(venv))
        assert key(app, venv) == before


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


    @pytest.mark.parametrize(
        "edit",
        [
            lambda text: text.replace("# the app's own package", "# edited comment"),
            lambda text: "# a new comment\n\n" + text.replace(" = ", "="),
            lambda text: text + 'precompile = true\nloader = "demo/_component.py"\n',
            lambda text: text.replace('destination = "demo/app.wasm"', 'destination = "demo/other.wasm"'),
            lambda text: text.replace("[tool.hatch.build.hooks.", "[tool.hatch.build.targets.wheel.hooks."),
            # Its options that change the component are keyed on their own (`wit`, `module`, ...).
            lambda text: text.replace('output = "build/app.wasm"', 'output = "build/app.wasm"\ncache = true'),
        ],
        ids=["comment", "layout", "component-init-option", "component-init-destination", "target-hooks", "componentize-option"],
    )
    def test_pyproject(self, app: Path, venv: Path, edit) -> None:  # type: ignore[no-untyped-def]
        before = key(app, venv)
        (app / "pyproject.toml").write_text(edit(PYPROJECT))
        assert project_file_digest(app / "pyproject.toml") is not None
        assert key(app, venv) == before

    def test_sdist_metadata(self, app: Path, venv: Path) -> None:
        # `uv build` and `python -m build` build the wheel from the unpacked sdist, which adds PKG-INFO.
        before = key(app, venv)
        (app / "PKG-INFO").write_text("Metadata-Version: 2.4\nName: demo\nVersion: 1.0\n")
        assert key(app, venv) == before

    def test_invalid_pyproject_counts_by_its_bytes(self, app: Path) -> None:
        (app / "pyproject.toml").write_text("[project\n")
        assert project_file_digest(app / "pyproject.toml") is None


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

    def test_mounts(self, app: Path, venv: Path, tmp_path: Path) -> None:
        # componentize-py numbers the python-path entries that exist, then the site directories.
        site = site_of(venv)
        assert site_mounts(app, ["."], [site]) == [1]
        assert site_mounts(app, [".", "nope", "wit"], [tmp_path / "nope", site, site]) == [2, 3]
        assert site_mounts(app, ["."], [site], installed=1) == [2]  # after the `requirements` folder

    def test_where_an_import_is_mounted(self, app: Path, venv: Path, tmp_path: Path) -> None:
        # Another site directory first (a user site): what the component imported is at /2, not /1,
        # and its paths would say so; a component that imported nothing from there is the same.
        user_site = tmp_path / "user-site"
        user_site.mkdir()
        site = site_of(venv)
        source = "0" * 64
        assert componentize_key(source, {"tinyword.py"}, [site], [1]) != componentize_key(
            source, {"tinyword.py"}, [user_site, site], [1, 2]
        )
        assert componentize_key(source, set(), [site], [1]) == componentize_key(source, set(), [user_site, site], [1, 2])


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
    for name in keys.SKIPPED_DIR_NAMES:
        (app / "pkg" / name).mkdir(parents=True, exist_ok=True)  # at any depth
        (app / "pkg" / name / "module.py").write_text("")
    (app / "pkg").rename(app / "pkg2")  # (an empty package directory is not part of the key either)
    assert key(app, venv) == before
    assert sorted(keys.SKIPPED_DIR_NAMES) == sorted(
        [".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", "__pycache__", ".pytest_cache", ".mypy_cache",
         ".ruff_cache", ".tox", ".nox", ".hypothesis"]
    )  # fmt: skip  (docs/building.md lists these)


def test_our_in_progress_files_are_left_out(app: Path, venv: Path) -> None:
    """A temp or partial file of ours (a build writing, or a killed one's debris) is never a source."""
    before = key(app, venv)
    (app / "build").mkdir()
    (app / "build" / f".app.wasm.{os.getpid()}.partial").write_bytes(b"\0asm half")
    (app / f".helper.py.{os.getpid()}.abcd_123.tmp").write_text("WORDS = 'half'\n")
    (app / f".app.wasm.{os.getpid()}.partial").mkdir()  # a pip install into a partial folder
    (app / f".app.wasm.{os.getpid()}.partial" / "module.py").write_text("")
    assert key(app, venv) == before
    assert keys.written_by_a_build(f".app.wasm.{os.getpid()}.partial")
    # Names that only look like ours are the app's files, and count.
    for name in (".app.wasm.tmp", f"notes.{os.getpid()}.partial", f".app.wasm.{os.getpid()}.partial.py"):
        assert not keys.written_by_a_build(name)
        (app / name).write_text("the app's own file")
        assert key(app, venv) != before
        (app / name).unlink()


def test_a_wit_folder_that_is_the_project_leaves_out_what_the_build_writes(app: Path, venv: Path) -> None:
    """`wit = "."`: the WIT next to the app. The key must not see the output the build writes (the hook checks
    the key again once componentize-py is done, and a changed key means an uncached build), but does see the WIT."""
    (app / "wit" / "world.wit").rename(app / "world.wit")
    before = key(app, venv, wit=".")
    (app / "build").mkdir()
    (app / "build" / "app.wasm").write_bytes(b"\0asm output")
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"bytecode")
    (app / ".git").mkdir()
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    # pyproject.toml, under `wit` too, counts by what it says there as well: a comment is no change.
    (app / "pyproject.toml").write_text((app / "pyproject.toml").read_text().replace("  # the app's own package", ""))
    assert key(app, venv, wit=".") == before
    (app / "world.wit").write_text("package demo:app;\nworld app { export run: func(); export stop: func(); }\n")
    assert key(app, venv, wit=".") != before


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


def test_imports_found_in_a_component() -> None:
    component = component_holding(
        "/0/app.py", "/1/tinyword.py", "/1/pkg/sub/mod.py", "/1/pkg-2.0.dist-info/METADATA", "/2/other.py",
        "/1/__pycache__/tinyword.cpython-314.pyc", "/10/far.py",
    )
    assert imported_tops(component, [1]) == {"tinyword.py", "pkg", "pkg-2.0.dist-info"}
    assert imported_tops(component, [1, 2, 10]) == {"tinyword.py", "pkg", "pkg-2.0.dist-info", "other.py", "far.py"}
    assert imported_tops(component, []) == set()
    # Python keeps a string with a character beyond Latin-1 in two or four bytes a character.
    assert imported_tops(component_holding("/1/wide/caf\u00e9\u2603.py", width=2), [1]) == {"wide"}
    assert imported_tops(component_holding("/1/wider/\U0001f600.py", width=4), [1]) == {"wider"}


def test_manifest_keeps_the_latest_sets_first(tmp_path: Path) -> None:
    path = manifest_path(tmp_path, "0" * 64)
    assert read_manifest(path) == []
    record_imports(path, {"b", "a"})
    record_imports(path, {"c"})
    record_imports(path, {"a", "b"})
    assert read_manifest(path) == [["a", "b"], ["c"]]
    path.write_text("{not json")
    assert read_manifest(path) == []  # a damaged manifest is a miss, never a wrong component
    path.write_text('{"imports": [["a", 1], ["b"]]}')
    assert read_manifest(path) == [["b"]]


def test_our_hooks_tables_count_as_never_written(tmp_path: Path) -> None:
    """Without our hooks' tables, the tables that held only them go too: the file means what it would without them."""
    project = '[project]\nname = "demo"\nversion = "1.0"\n'
    ours = (
        '[tool.hatch.build.hooks.componentize-py]\nmodule = "app"\n'
        '[tool.hatch.build.hooks.component-init]\ncomponent = "app.wasm"\n'
        '[tool.hatch.build.targets.wheel.hooks.component-init]\ncomponent = "app.wasm"\n'
    )

    def digest(text: str) -> str | None:
        path = tmp_path / "pyproject.toml"
        path.write_text(text)
        return project_file_digest(path)

    bare = digest(project)
    assert bare is not None
    assert digest(project + ours) == bare
    assert digest(project + '[tool.hatch.build.hooks.component-init]\n') == bare
    # What else those tables hold is the app's, and counts.
    assert digest(project + ours + '[tool.hatch.build.hooks.custom]\n') != bare
    assert digest(project + ours + '[tool.hatch.build.targets.wheel]\npackages = ["demo"]\n') != bare
    assert digest(project + ours + '[tool.hatch.build]\ndirectory = "out"\n') != bare
    assert digest(project + ours + '[tool.other]\n') != bare
    # An empty table the app wrote itself is kept, as the file says it.
    assert digest(project + '[tool.hatch.build.hooks]\n') != bare


def test_an_unreadable_pyproject_counts_by_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b'[project]\nname = "d\xff"\n')
    assert project_file_digest(tmp_path / "pyproject.toml") is None
    assert project_file_digest(tmp_path / "missing.toml") is None


def test_only_the_projects_own_pyproject_counts_by_its_meaning(app: Path, venv: Path) -> None:
    """Another TOML file (a data file the app reads, a sub-package's own pyproject.toml) counts by its bytes."""
    for name in ("settings.toml", "sub/pyproject.toml"):
        (app / name).parent.mkdir(exist_ok=True)
        (app / name).write_text("[table]\nwords = 3\n")
        before = key(app, venv)
        (app / name).write_text("# a comment the app may print\n[table]\nwords = 3\n")
        assert key(app, venv) != before, name


def test_the_pyproject_meaning_ignores_key_order_and_takes_toml_dates(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\nversion = "1.0"\n[tool.demo]\nreleased = 2024-01-01\n')
    first = project_file_digest(path)
    assert first is not None
    path.write_text('[tool.demo]\nreleased = 2024-01-01\n[project]\nversion = "1.0"\nname = "demo"\n')
    assert project_file_digest(path) == first
    path.write_text('[tool.demo]\nreleased = 2024-01-02\n[project]\nversion = "1.0"\nname = "demo"\n')
    assert project_file_digest(path) != first


def test_a_hooks_entry_that_is_no_table_is_the_apps(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n[tool.hatch.build]\nhooks = "componentize-py"\n')
    assert project_file_digest(path) is not None

"""Errors that point at the fix: a missing file names `dirs`, a missing variable `env`; panic lines only with -v.

The components here are WAT: their init writes what a failing Python app
writes to stderr (its traceback, then componentize-py's runtime panic report)
and traps, as componentize-py 0.25 apps do; tests/test_init_messages.py runs
the real app (slow). The hints are read from those words, so these are the
inputs they are made for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hatch_support import failed_build
from test_hatch_real_engine import make_probe_project

from hatch_component_init.cli import main
from hatch_component_init.errors import ComponentInitError
from hatch_component_init.guest_output import LinePrefixer
from wat_support import printing_component

pytestmark = pytest.mark.usefixtures("snapshot_cache_dir")


def writes_then_traps(text: str) -> bytes:
    """A component whose init writes ``text`` to stderr and traps."""
    data = "".join(f"\\{byte:02x}" for byte in text.encode())
    return printing_component(
        "stderr",
        f"""(data (i32.const 1024) "{data}")
    (func (export "init")
      (call $write (call $get-stderr) (i32.const 1024) (i32.const {len(text.encode())}) (i32.const 16))
      unreachable)""",
    )


def python_error(*frames_and_error: str) -> str:
    """What a componentize-py app prints when its init raises: the traceback, then the runtime's panic."""
    return "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/0/app.py", line 14, in component_init',
            *frames_and_error,
            "",
            "thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1280:25:",
            "Python function threw an unexpected exception",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            "",
        ]
    )


MISSING_FILE = python_error("FileNotFoundError: [Errno 44] No such file or directory: '/data/greeting.txt'")
MISSING_VARIABLE = python_error('  File "<frozen os>", line 709, in __getitem__', "KeyError: 'API_TOKEN'")
PANIC_LINES = ("thread '<unnamed>' (1) panicked at", "Python function threw an unexpected exception", "RUST_BACKTRACE")


def run_cli(tmp_path: Path, text: str, *args: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The command on a component that writes ``text`` and traps, from ``tmp_path``: its stderr lines."""
    (tmp_path / "app.wasm").write_bytes(writes_then_traps(text))
    capsys.readouterr()
    assert main(["app.wasm", "-o", "out.wasm", *args]) == 1
    assert not (tmp_path / "out.wasm").exists()
    return capsys.readouterr().err.splitlines()


def hints(lines: list[str]) -> list[str]:
    return [line.removeprefix("component-init: hint: ") for line in lines if line.startswith("component-init: hint: ")]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, holding `data/greeting.txt` (and `other/`)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "greeting.txt").write_text("hello")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


class TestMissingFile:
    def test_a_project_directory_that_holds_it(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        lines = run_cli(project, MISSING_FILE, capsys=capsys)
        assert lines[-2].startswith("component-init: error: `app.wasm`: the init function `component-init` failed:")
        assert hints(lines) == [
            "The guest looked for `/data/greeting.txt`, outside every directory granted to init; `data` holds it: "
            'grant it with `dirs = { "data" = "/data" }` (hook) or `--dir data::/data` (command).'
        ]
        assert lines[-1].startswith("component-init: hint: ")

    def test_a_granted_directory_that_holds_it_deeper(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        # The project granted whole, at another path: its `data` is the directory to grant at /data.
        lines = run_cli(project, MISSING_FILE, "--dir", f"{project}::/srv", capsys=capsys)
        assert hints(lines) == [
            "The guest looked for `/data/greeting.txt`, outside every directory granted to init; `data` holds it: "
            'grant it with `dirs = { "data" = "/data" }` (hook) or `--dir data::/data` (command).'
        ]

    def test_a_typo_in_the_guest_path(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        lines = run_cli(project, MISSING_FILE, "--dir", "data::/dta", capsys=capsys)
        assert hints(lines) == [
            "The guest looked for `/data/greeting.txt`, outside every directory granted to init; "
            "did you mean `/dta/greeting.txt`? (`data` is granted at `/dta`)"
        ]

    def test_inside_a_granted_directory(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        text = MISSING_FILE.replace("greeting.txt", "greting.txt")
        lines = run_cli(project, text, "--dir", "data::/data", capsys=capsys)
        assert hints(lines) == [
            "The guest looked for `/data/greting.txt` in the directory granted at `/data`, "
            "but `data/greting.txt` does not exist on the host."
        ]

    def test_nothing_holds_it(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        text = MISSING_FILE.replace("greeting.txt", "words.txt")
        lines = run_cli(project, text, "--dir", "other::/other", capsys=capsys)
        assert hints(lines) == [
            "The guest looked for `/data/words.txt`, outside every directory granted to init (`/other`): "
            "grant the directory that holds it with `dirs` (hook) or `--dir` (command)."
        ]

    def test_no_directory_granted(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.chdir(tmp_path)
        lines = run_cli(tmp_path, MISSING_FILE, capsys=capsys)
        assert hints(lines) == [
            "The guest looked for `/data/greeting.txt`, but init is given no directory: grant the one that holds "
            "it with `dirs` (hook) or `--dir` (command)."
        ]

    def test_the_c_and_go_wording(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.chdir(tmp_path)
        lines = run_cli(tmp_path, "open /etc/app.toml: no such file or directory\n", capsys=capsys)
        assert hints(lines) == [
            "The guest looked for `/etc/app.toml`, but init is given no directory: grant the one that holds "
            "it with `dirs` (hook) or `--dir` (command)."
        ]

    def test_a_file_that_is_there_gets_no_hint(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        # Granted and present: the guest failed for another reason, which the hint cannot know.
        lines = run_cli(project, MISSING_FILE, "--dir", "data::/data", capsys=capsys)
        assert hints(lines) == []


class TestMissingVariable:
    def test_names_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.chdir(tmp_path)
        lines = run_cli(tmp_path, MISSING_VARIABLE, capsys=capsys)
        assert hints(lines) == [
            "The guest read the environment variable `API_TOKEN`, which init is not given: set it with "
            '`env = { API_TOKEN = "..." }` (hook) or `--env API_TOKEN=...` (command).'
        ]

    def test_a_variable_that_is_given_gets_no_hint(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.chdir(tmp_path)
        assert hints(run_cli(tmp_path, MISSING_VARIABLE, "--env", "API_TOKEN=x", capsys=capsys)) == []

    def test_a_key_error_of_the_app_gets_no_hint(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.chdir(tmp_path)
        text = python_error('  File "/0/app.py", line 3, in lookup', "KeyError: 'API_TOKEN'")
        assert hints(run_cli(tmp_path, text, capsys=capsys)) == []


class TestPanicLines:
    def test_hidden_after_a_traceback(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.chdir(tmp_path)
        lines = run_cli(tmp_path, MISSING_FILE, capsys=capsys)
        guest = [line for line in lines if line.startswith("[guest stderr]")]
        assert guest == [
            "[guest stderr] Traceback (most recent call last):",
            '[guest stderr]   File "/0/app.py", line 14, in component_init',
            "[guest stderr] FileNotFoundError: [Errno 44] No such file or directory: '/data/greeting.txt'",
        ]

    def test_shown_with_verbose(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.chdir(tmp_path)
        lines = run_cli(tmp_path, MISSING_FILE, "-v", capsys=capsys)
        guest = "\n".join(line.removeprefix("[guest stderr] ") for line in lines if line.startswith("[guest stderr]"))
        assert guest + "\n" == MISSING_FILE

    def test_a_panic_without_a_traceback_is_shown(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # A Rust app's own panic is its account of the failure.
        monkeypatch.chdir(tmp_path)
        text = (
            "thread 'main' panicked at src/lib.rs:9:5:\ncalled `Option::unwrap()` on a `None` value\n"
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
        )
        lines = run_cli(tmp_path, text, capsys=capsys)
        assert "[guest stderr] called `Option::unwrap()` on a `None` value" in lines
        assert "[guest stderr] thread 'main' panicked at src/lib.rs:9:5:" in lines

    @pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
    def test_in_any_chunks(self, chunk: int) -> None:
        shown: list[str] = []
        out = LinePrefixer(shown.append, hide_panics=True)
        data = (MISSING_FILE + "after\n").encode()
        for start in range(0, len(data), chunk):
            out("stderr", data[start : start + chunk])
        out.flush()
        assert [line.removeprefix("[guest stderr] ") for line in shown] == [*MISSING_FILE.splitlines()[:3], "after"]

    def test_by_default_nothing_is_hidden(self) -> None:
        """Hiding the panic lines is for the command and the hook to ask (`-v` shows them): not the default."""
        shown: list[str] = []
        out = LinePrefixer(shown.append)
        out("stderr", MISSING_FILE.encode())
        out.flush()
        assert [line.removeprefix("[guest stderr] ") for line in shown] == MISSING_FILE.splitlines()

    def test_a_report_that_does_not_end_is_shown(self) -> None:
        shown: list[str] = []
        out = LinePrefixer(shown.append, hide_panics=True)
        text = "Traceback (most recent call last):\nValueError: x\nthread 'main' panicked at a.rs:1:1:\nboom\n"
        out("stderr", text.encode())
        out.flush()
        assert [line.removeprefix("[guest stderr] ") for line in shown] == text.splitlines()


class TestHook:
    def test_the_hint_is_the_messages_last_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = make_probe_project(tmp_path / "p", writes_then_traps(MISSING_FILE))
        (project / "data").mkdir()
        (project / "data" / "greeting.txt").write_text("hello")
        failure = failed_build(project, capsys)
        assert isinstance(failure.error, ComponentInitError)
        assert failure.message == (
            "The guest looked for `/data/greeting.txt`, outside every directory granted to init; `data` holds it: "
            'grant it with `dirs = { "data" = "/data" }` (hook) or `--dir data::/data` (command).'
        )
        assert "Pre-initializing `build/probe.wasm` failed: the init function `component-init` failed:" in failure.output
        assert "  [guest stderr] FileNotFoundError: [Errno 44]" in failure.output
        assert "panicked at" not in failure.output

    def test_hatch_verbose_shows_the_panic_lines(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HATCH_VERBOSE", "1")
        project = make_probe_project(tmp_path / "p", writes_then_traps(MISSING_FILE))
        output = failed_build(project, capsys).output
        for text in PANIC_LINES:
            assert text in output


class TestDidYouMean:
    def test_init_func_a_word_of_an_export(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        monkeypatch.chdir(tmp_path)
        lines = run_cli(tmp_path, "x\n", "-f", "init", capsys=capsys)
        assert "the component has no function export `init` (did you mean `component-init`?)." in lines[-1]

    def test_dir(self, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["app.wasm", "-o", "out.wasm", "--dir", "dta::/data"]) == 1
        assert capsys.readouterr().err == (
            "component-init: error: --dir `dta::/data`: the host directory `dta` does not exist; did you mean `data`?\n"
        )

    def test_dirs(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        project = make_probe_project(tmp_path / "p", writes_then_traps("x\n"), 'dirs = { "assets/dta" = "/data" }\n')
        (project / "assets" / "data").mkdir(parents=True)
        failure = failed_build(project, capsys)
        assert failure.message == (
            "Option `dirs` for build hook `component-init` names directory `assets/dta`, which does not exist; "
            "did you mean `assets/data`?"
        )

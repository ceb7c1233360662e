"""Every code block of README.md and docs/ runs here, and the docs site builds strictly.

One test per page. The contract (what a page may rely on):

- every fenced block has a language tag;
- a block directly preceded by a line ``<!-- file: relative/path -->`` is a file: it is
  written to that path in the page's scratch directory (a fresh temp dir per page) before
  anything of the page runs;
- ```python blocks without a file marker run in order, in one namespace per page, with the
  scratch directory as the current directory and first on ``sys.path``, and with the environment
  variables the page's commands left (so a subprocess finds what an activated venv put on PATH);
- ```console blocks: each line starting with ``$ `` is a command (a line ending in ``\\``
  continues on the next), run with bash in order, after the python blocks before it; a ``cd``
  or an ``export`` carries over to the page's next command. Other lines are shown output and
  are not checked. A command must exit 0, except the last one of a block directly preceded
  by ``<!-- exit: N -->``, which must exit N (a page that shows a failure). In a block directly
  preceded by ``<!-- output -->`` each shown line (but ``...``) must be a line of its command's
  output, in that order (markers may be stacked on consecutive lines); after
  ``<!-- output, numbers vary -->`` instead, a shown line matches an output line that differs only
  in its numbers (sizes, times), so the words are checked where the figures cannot be;
- ```text blocks (and any other language without a file marker) are shown, not run;
- a page containing ``<!-- slow -->`` runs as a slow test.

Commands see the test venv's ``bin`` first on ``PATH``, ``$HCI_FIXTURES`` (``tests/fixtures``)
and ``$HCI_REPO`` (this checkout: the pages that build a wheel of hatch-component-init say
where it comes from). The hook caches and Hatch's home are private to the page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from hatch_support import hatch_home_env
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

FILE_MARKER = re.compile(r"^<!-- file: (\S+) -->$")
EXIT_MARKER = re.compile(r"^<!-- exit: (\d+) -->$")
OUTPUT_MARKER = "<!-- output -->"
OUTPUT_NUMBERS_MARKER = "<!-- output, numbers vary -->"
NUMBER = re.compile(r"\d+(?:\.\d+)?")
MARKER = re.compile(r"^<!-- .* -->$")
SLOW_MARKER = "<!-- slow -->"
#: Seconds one console command may take (an isolated wheel build with componentize-py under load).
COMMAND_TIMEOUT = 1800


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    file: str | None  # the file marker's path
    exit_status: int  # what the block's last command must exit with
    check_output: bool  # the output shown in the block must be printed
    numbers_vary: bool = False  # ... up to its numbers


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order; a fence without a language fails the test."""
    text = page.read_text()
    lines = text.splitlines()
    found = []
    used_markers: set[int] = set()
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or token.map is None:
            continue
        start = token.map[0]
        language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
        assert language, f"{page.name}:{start + 1}: a fenced block without a language tag"
        # The marker lines (`<!-- ... -->`) stacked directly above the fence.
        above = start - 1
        markers = []
        while above >= 0 and MARKER.match(lines[above].strip()):
            markers.append(lines[above].strip())
            used_markers.add(above)
            above -= 1
        file_match = next(filter(None, map(FILE_MARKER.match, markers)), None)
        exit_match = next(filter(None, map(EXIT_MARKER.match, markers)), None)
        found.append(
            Block(
                language=language,
                code=token.content,
                line=start + 1,
                file=file_match.group(1) if file_match else None,
                exit_status=int(exit_match.group(1)) if exit_match else 0,
                check_output=OUTPUT_MARKER in markers or OUTPUT_NUMBERS_MARKER in markers,
                numbers_vary=OUTPUT_NUMBERS_MARKER in markers,
            )
        )
    for n, line in enumerate(lines):
        if (FILE_MARKER.match(line.strip()) or line.strip() in (OUTPUT_MARKER, OUTPUT_NUMBERS_MARKER)) and (
            n not in used_markers
        ):
            raise AssertionError(f"{page.name}:{n + 1}: a marker not directly followed by a fenced block")
    return found


def commands(code: str) -> list[tuple[str, list[str]]]:
    """The ``$ `` lines of a console block (continuation lines joined), each with the output shown after it."""
    result: list[tuple[str, list[str]]] = []
    pending: list[str] | None = None
    for line in code.splitlines():
        if pending is not None:
            pending.append(line)
        elif line.startswith("$ "):
            pending = [line[2:]]
        else:
            if result:
                result[-1][1].append(line)
            continue
        if not line.endswith("\\"):
            result.append(("\n".join(pending), []))
            pending = None
    assert pending is None, f"a command continues past the end of its block: {pending}"
    return result


def check_shown_output(where: str, command: str, shown: list[str], output: str, numbers_vary: bool = False) -> None:
    """Each shown line (but `...`) is a line of the command's output, in the order shown (with
    ``numbers_vary``, a line that differs from it only in its numbers counts)."""

    def form(line: str) -> str:
        return NUMBER.sub("0", line.strip()) if numbers_vary else line.strip()

    actual = iter(form(line) for line in output.splitlines())
    for line in shown:
        if line.strip() in ("", "..."):
            continue
        assert any(form(line) == got for got in actual), (
            f"{where}: `{command}` did not print `{line.strip()}` (in this order); it printed:\n{output[-6000:]}"
        )


class Shell:
    """bash commands run one by one, each starting where the previous one left (directory, exports)."""

    def __init__(self, cwd: Path, env: dict[str, str], state: Path) -> None:
        self.cwd, self.env, self.state = cwd, env, state

    def run(self, command: str) -> tuple[int, str]:
        cwd_file, env_file = self.state / "cwd", self.state / "env"
        script = f'{command}\n__status=$?\npwd > "{cwd_file}"\nenv -0 > "{env_file}"\nexit $__status\n'
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        if cwd_file.exists():
            self.cwd = Path(cwd_file.read_text().strip())
            entries = env_file.read_bytes().decode().split("\0")
            self.env = dict(entry.split("=", 1) for entry in entries if "=" in entry)
            cwd_file.unlink()
        return proc.returncode, proc.stdout


def shell_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # not resolved: the venv's bin, not the base Python's
    # Not an activated venv: componentize-py reads $VIRTUAL_ENV's site-packages, and the test venv's
    # spin-sdk there brings WIT worlds that a page's own build does not expect.
    inherited = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    return {
        **inherited,
        **hatch_home_env(tmp_path / "hatch-home"),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "HCI_FIXTURES": str(FIXTURES),
        "HCI_REPO": str(REPO),
        "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "hook-cache"),
        "HATCH_COMPONENT_INIT_SKIP": "",
    }


def use_environment(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Give a python block the environment the page's commands left (an activated venv's PATH, exports)."""
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


def write_file(scratch: Path, page: Path, block: Block) -> None:
    assert block.file is not None
    relative = PurePosixPath(block.file)
    assert not relative.is_absolute() and ".." not in relative.parts, (
        f"{page.name}:{block.line}: file `{block.file}` is not inside the page's directory"
    )
    target = scratch / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.code)


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else page.name


def page_param(page: Path) -> object:
    marks = [pytest.mark.slow] if SLOW_MARKER in page.read_text() else []
    return pytest.param(page, marks=marks, id=page_id(page))


@pytest.mark.parametrize("page", [page_param(page) for page in PAGES])
def test_page(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_page(page, tmp_path, monkeypatch)


def run_page(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the page's files, then run its python and console blocks in order."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(parents=True)
    state = tmp_path / "shell-state"
    state.mkdir()
    page_blocks = blocks(page)
    for block in page_blocks:
        if block.file is not None:
            write_file(scratch, page, block)

    monkeypatch.chdir(scratch)
    monkeypatch.syspath_prepend(str(scratch))
    modules_before = set(sys.modules)
    shell = Shell(scratch, shell_env(tmp_path), state)
    namespace: dict[str, object] = {"__name__": "__main__"}
    try:
        for block in page_blocks:
            where = f"{page_id(page)}:{block.line}"
            if block.file is not None:
                continue
            if block.language == "python":
                use_environment(shell.env, monkeypatch)
                exec(compile(block.code, where, "exec"), namespace)
            elif block.language == "console":
                page_commands = commands(block.code)
                assert page_commands, f"{where}: a console block without a `$ ` command"
                for n, (command, shown) in enumerate(page_commands):
                    expected = block.exit_status if n == len(page_commands) - 1 else 0
                    status, output = shell.run(command)
                    assert status == expected, (
                        f"{where}: `{command}` exited with {status}, expected {expected}:\n{output[-6000:]}"
                    )
                    if block.check_output:
                        check_shown_output(where, command, shown, output, block.numbers_vary)
    finally:
        # Modules the page defined (a host module, a package) must not leak into the next page.
        for name in set(sys.modules) - modules_before:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(scratch)):
                del sys.modules[name]


def test_every_page_has_one_title() -> None:
    for page in PAGES:
        titles = [line for line in page.read_text().splitlines() if line.startswith("# ")]
        tokens = MarkdownIt("commonmark").parse(page.read_text())
        h1 = [t for t in tokens if t.type == "heading_open" and t.tag == "h1"]
        assert len(h1) == 1, f"{page_id(page)} has {len(h1)} `# Title` headings: {titles}"


def test_readme_links_resolve() -> None:
    # The README is not part of the MkDocs site, so its strict build does not check these.
    text = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        assert (REPO / path).exists(), f"README.md links to `{target}`, which does not exist"


def test_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link, a missing anchor or a bad nav entry fails it."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()


HARNESS_PAGE = """\
# A page

<!-- file: pkg/data.txt -->
```text
hello
```

```python
from pathlib import Path
greeting = Path("pkg/data.txt").read_text().strip()
```

```console
$ cd pkg
$ export SEEN=$(cat data.txt)
$ echo "$SEEN" \\
  > seen.txt
```

```python
import os
assert greeting == "hello"
assert Path("pkg/seen.txt").read_text() == "hello\\n"
assert os.environ["SEEN"] == "hello"
```

<!-- output -->
```console
$ printf 'one\\ntwo\\nthree\\n'
one
...
three
```

<!-- output -->
<!-- exit: 3 -->
```console
$ test "$HCI_FIXTURES" = "{fixtures}" && test -d "$HCI_FIXTURES/greeter" && test "$(command -v python)" = "{python}"
$ echo bye; exit 3
bye
```
"""


def test_harness_runs_a_page_as_promised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.md"
    page.write_text(HARNESS_PAGE.format(fixtures=FIXTURES, python=Path(sys.executable).parent / "python"))
    run_page(page, tmp_path / "run", monkeypatch)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("```text\nhello", "```\nhello"), "without a language tag"),
        (("$ echo bye; exit 3", "$ echo bye; exit 4"), "exited with 4, expected 3"),
        (("...\nthree", "...\nfour"), "did not print `four`"),
        (("one\n...", "two\none"), "did not print `one` (in this order)"),
        (("bye\n```", "hi\n```"), "did not print `hi`"),
        (("$ cd pkg", "$ cd pkg && false"), "exited with 1, expected 0"),
        (('== "hello"', '== "bye"'), None),
        (("<!-- file: pkg/data.txt -->\n", "<!-- file: pkg/data.txt -->\n\n"), "not directly followed"),
    ],
)
def test_harness_fails_a_broken_page(
    change: tuple[str, str], message: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "page.md"
    text = HARNESS_PAGE.format(fixtures=FIXTURES, python=Path(sys.executable).parent / "python")
    assert change[0] in text
    page.write_text(text.replace(*change, 1))
    with pytest.raises(AssertionError, match=re.escape(message) if message else None):
        run_page(page, tmp_path / "run", monkeypatch)


def test_numbers_vary_checks_the_words_not_the_figures(tmp_path: Path) -> None:
    output = "Built `a.wasm` from the cache (18.4 MB) in 0.25 s\nSuccessfully built a-0.1.0.tar.gz\n"
    shown = ["Built `a.wasm` from the cache (17.9 MB) in 0.3 s", "...", "Successfully built a-0.1.0.tar.gz"]
    check_shown_output("page", "build", shown, output, numbers_vary=True)
    with pytest.raises(AssertionError, match="did not print"):
        check_shown_output("page", "build", shown, output)  # the figures differ
    with pytest.raises(AssertionError, match="did not print"):
        check_shown_output("page", "build", ["Built `a.wasm` (17.9 MB) in 0.3 s"], output, numbers_vary=True)
    page = tmp_path / "page.md"
    page.write_text("<!-- output, numbers vary -->\n```console\n$ true\n```\n")
    (block,) = blocks(page)
    assert block.check_output and block.numbers_vary


def test_readme_is_a_front_door() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


def test_quick_start_commands_are_the_ones_ci_and_the_sample_run() -> None:
    # The Quick start is a text block (running the suite from inside the suite would recurse): its
    # two commands must stay the sample's script and the install + test command that .ci/run runs.
    text = (REPO / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = next(b for b in blocks(REPO / "README.md") if b.code.strip() and b.code in quick_start)
    build_sample, run_tests = [line.split("  #")[0].strip() for line in block.code.splitlines()]
    assert build_sample == "sh sample_project/run.sh" and (REPO / "sample_project" / "run.sh").is_file()
    ci = (REPO / ".ci" / "run").read_text().replace(" --quiet", "")
    for step in run_tests.split(" && "):
        assert re.search(rf"(^|\s){re.escape(step)}($|\s)", ci, re.M), f"the Quick start's `{step}` is not what .ci/run does"

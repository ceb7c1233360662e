"""Every code block of README.md and docs/ runs here, and the docs site builds strictly.

One test per page. The contract (what a page may rely on):

- every fenced block has a language tag;
- a block directly preceded by a line ``<!-- file: relative/path -->`` is a file: it is
  written to that path in the page's scratch directory (a fresh temp dir per page) before
  anything of the page runs;
- ```python blocks without a file marker run in order, in one namespace per page, with the
  scratch directory as the current directory and first on ``sys.path``;
- ```console blocks: each line starting with ``$ `` is a command (a line ending in ``\\``
  continues on the next), run with bash in order, after the python blocks before it; a ``cd``
  or an ``export`` carries over to the page's next command. Other lines are shown output and
  are not checked. A command must exit 0, except the last one of a block directly preceded
  by ``<!-- exit: N -->``, which must exit N (a page that shows a failure);
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


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order; a fence without a language fails the test."""
    text = page.read_text()
    lines = text.splitlines()
    found = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or token.map is None:
            continue
        start = token.map[0]
        language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
        assert language, f"{page.name}:{start + 1}: a fenced block without a language tag"
        before = lines[start - 1].strip() if start > 0 else ""
        file_match = FILE_MARKER.match(before)
        exit_match = EXIT_MARKER.match(before)
        found.append(
            Block(
                language=language,
                code=token.content,
                line=start + 1,
                file=file_match.group(1) if file_match else None,
                exit_status=int(exit_match.group(1)) if exit_match else 0,
            )
        )
    markers = [n for n, line in enumerate(lines) if FILE_MARKER.match(line.strip())]
    fenced = {block.line - 2 for block in found if block.file is not None}
    for n in markers:
        assert n in fenced, f"{page.name}:{n + 1}: a file marker not directly followed by a fenced block"
    return found


def commands(code: str) -> list[str]:
    """The ``$ `` lines of a console block, continuation lines joined."""
    result: list[str] = []
    pending: list[str] | None = None
    for line in code.splitlines():
        if pending is not None:
            pending.append(line)
        elif line.startswith("$ "):
            pending = [line[2:]]
        else:
            continue
        if not line.endswith("\\"):
            result.append("\n".join(pending))
            pending = None
    assert pending is None, f"a command continues past the end of its block: {pending}"
    return result


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
    return {
        **os.environ,
        **hatch_home_env(tmp_path / "hatch-home"),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "VIRTUAL_ENV": sys.prefix,
        "HCI_FIXTURES": str(FIXTURES),
        "HCI_REPO": str(REPO),
        "HATCH_COMPONENT_INIT_CACHE_DIR": str(tmp_path / "hook-cache"),
        "HATCH_COMPONENT_INIT_SKIP": "",
    }


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


#: Pages being rewritten to the contract (the old README's blocks need files it never showed).
PENDING = {"README.md"}


def page_param(page: Path) -> object:
    marks = [pytest.mark.slow] if SLOW_MARKER in page.read_text() else []
    if page_id(page) in PENDING:
        marks.append(pytest.mark.xfail(strict=True, reason="rewritten to the docs contract next"))
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
                exec(compile(block.code, where, "exec"), namespace)
            elif block.language == "console":
                page_commands = commands(block.code)
                assert page_commands, f"{where}: a console block without a `$ ` command"
                for n, command in enumerate(page_commands):
                    expected = block.exit_status if n == len(page_commands) - 1 else 0
                    status, output = shell.run(command)
                    assert status == expected, (
                        f"{where}: `{command}` exited with {status}, expected {expected}:\n{output[-6000:]}"
                    )
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
assert greeting == "hello"
assert Path("pkg/seen.txt").read_text() == "hello\\n"
```

<!-- exit: 3 -->
```console
$ test "$HCI_FIXTURES" = "{fixtures}" && test -d "$HCI_FIXTURES/greeter" && test "$(command -v python)" = "{python}"
$ exit 3
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
        (("$ exit 3", "$ exit 4"), "exited with 4, expected 3"),
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

"""hatch/site_packages.py on its own: what provides an import, what is linked in, where componentize-py looks.

The rules of what counts are in hatch/keys.py; these tests pin each rule of
reading an environment (RECORD rows, the first site directory winning, dangling
links, fallbacks) on small real directories, so that a break of one shows here.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from hatch_component_init.hatch.site_packages import (
    componentize_py_version,
    componentize_site_dirs,
    imported_tops,
    linked_distributions,
    provider_digests,
)
from test_hatch_keys import component_holding


def _dist(site: Path, name: str, rows: list[str], files: dict[str, bytes] | None = None) -> Path:
    """A distribution `name-1.0`: its RECORD holds ``rows`` (then its own row), its ``files`` are written."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    for path, data in (files or {}).items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)
    (info / "RECORD").write_text("\n".join([*rows, f"{name}-1.0.dist-info/RECORD,,"]) + "\n", encoding="utf-8")
    return info


def test_the_componentize_py_version_is_the_installed_ones() -> None:
    assert componentize_py_version() == importlib.metadata.version("componentize-py")


def test_the_first_site_directory_holding_an_entry_provides_it(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "pkg", ["pkg/__init__.py,sha256=aaa,1"], {"pkg/__init__.py": b""})
    _dist(second, "pkg", ["pkg/__init__.py,sha256=bbb,1"], {"pkg/__init__.py": b""})
    found = provider_digests([first, second], ["pkg"], [1, 2])
    assert found == provider_digests([first], ["pkg"], [1])
    assert found[0][:3] == ["pkg", "/1", found[0][2]]
    assert found[0][2].startswith("pkg-1.0.dist-info:")
    # The second directory's copy is shadowed: changing it changes nothing.
    _dist(second, "pkg", ["pkg/__init__.py,sha256=ccc,1"])
    assert provider_digests([first, second], ["pkg"], [1, 2]) == found
    # Found in the second directory only: named by its guest directory.
    assert provider_digests([tmp_path / "none", second], ["pkg"], [1, 2])[0][1] == "/2"
    assert provider_digests([first], ["gone"], [1]) == [["gone", "missing"]]
    assert provider_digests([first], ["pkg"]) == [found[0][:1] + found[0][2:]]


def test_each_entry_is_stood_for_by_its_own_owners(tmp_path: Path) -> None:
    """Two packages in one site directory: each entry's digest is its distribution's, and a dist-info is its own."""
    site = tmp_path / "site"
    _dist(site, "one", ["one/__init__.py,sha256=aaa,1"], {"one/__init__.py": b""})
    _dist(site, "two", ["two/__init__.py,sha256=bbb,1", "two/sub/x.py,sha256=ccc,1"], {"two/__init__.py": b""})
    before = provider_digests([site], ["one", "two", "two-1.0.dist-info"])
    assert [row[1].split(":")[0] for row in before] == ["one-1.0.dist-info", "two-1.0.dist-info", "two-1.0.dist-info"]
    assert before[1][1:] == before[2][1:]
    _dist(site, "two", ["two/__init__.py,sha256=bbb,1", "two/sub/x.py,sha256=CCC,1"])
    after = provider_digests([site], ["one", "two", "two-1.0.dist-info"])
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_a_dangling_link_is_an_entry_and_a_loose_one_counts_by_its_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "gone.py").symlink_to(tmp_path / "nowhere.py")
    assert provider_digests([site], ["gone.py"])[0][1] == "loose"
    (site / "loose").mkdir()
    (site / "loose" / "__init__.py").write_text("A = 1\n")
    before = provider_digests([site], ["loose"])
    # Bytecode the guest or a host Python wrote is no input; a source file is.
    (site / "loose" / "__pycache__").mkdir()
    (site / "loose" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"x")
    assert provider_digests([site], ["loose"]) == before
    (site / "loose" / "__init__.py").write_text("A = 2\n")
    assert provider_digests([site], ["loose"]) != before


@pytest.mark.parametrize(
    ("row", "counts"),
    [
        ("pkg/data.txt,sha256=eee,3", True),
        ("pkg-1.0.dist-info/METADATA,sha256=fff,9", True),
        # How it was installed, not what: the installer's bookkeeping of a dist-info.
        ("pkg-1.0.dist-info/INSTALLER,sha256=ggg,4", False),
        ("pkg-1.0.dist-info/REQUESTED,,", False),
        ("pkg-1.0.dist-info/direct_url.json,sha256=hhh,50", False),
        # Outside the site directory: scripts (naming the environment's interpreter), absolute data files.
        ("../../../bin/pkg,sha256=iii,50", False),
        ("/usr/share/pkg/data,sha256=jjj,50", False),
        ("", False),
    ],
)
def test_which_record_rows_count(tmp_path: Path, row: str, counts: bool) -> None:
    base = ["pkg/__init__.py,sha256=aaa,1"]
    _dist(tmp_path / "a", "pkg", base, {"pkg/__init__.py": b""})
    _dist(tmp_path / "b", "pkg", [*base, row], {"pkg/__init__.py": b""})
    a, b = (provider_digests([tmp_path / name], ["pkg"]) for name in "ab")
    assert (a != b) is counts


def test_a_distribution_without_a_record_still_owns_its_dist_info(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "pkg-1.0.dist-info").mkdir(parents=True)
    (site / "pkg-1.0.dist-info" / "METADATA").write_text("Name: pkg\n")
    assert provider_digests([site], ["pkg-1.0.dist-info"]) == [["pkg-1.0.dist-info", "pkg-1.0.dist-info:no RECORD"]]
    _dist(site, "pkg", [])
    assert provider_digests([site], ["pkg-1.0.dist-info"])[0][1] != "pkg-1.0.dist-info:no RECORD"


@pytest.mark.parametrize(
    ("path", "data", "linked"),
    [
        ("ext/_speed.cpython-312-wasm32-wasi.so", b"\0asm\1\0\0\0", True),
        ("ext/_speed.abi3.so", b"\0asm\1\0\0\0", True),
        ("ext/_speed.abi3.so", b"\x7fELF", False),
        ("ext/_speed.so", b"\0asm\1\0\0\0", False),
        ("sdk/deep/componentize-py.toml", b"", True),
        ("sdk/componentize-py.toml.bak", b"", False),
    ],
)
def test_what_is_linked_in(tmp_path: Path, path: str, data: bytes, linked: bool) -> None:
    site = tmp_path / "site"
    _dist(site, "plain", ["plain/__init__.py,sha256=aaa,1"], {"plain/__init__.py": b""})
    _dist(site, "ext", [f"{path},sha256=bbb,8"], {path: data})
    found = linked_distributions([tmp_path / "none", site])
    assert [entry.split(":")[0] for entry in found] == (["ext-1.0.dist-info"] if linked else [])


def test_a_listed_extension_that_is_not_there_is_not_linked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "ext", ["ext/_speed.abi3.so,sha256=bbb,8"])
    assert linked_distributions([site]) == []


def test_guest_paths_of_up_to_four_digits(tmp_path: Path) -> None:
    component = component_holding("/9999/four.py", "/10000/five.py", "/3/x/../three.py")
    assert imported_tops(component, [9999]) == {"four.py"}
    assert imported_tops(component, [10000]) == set()
    assert imported_tops(component, [3]) == {"x"}


def test_a_failing_pipenv_falls_back_to_python3(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pipenv").write_text("#!/bin/sh\necho 'No virtualenv has been created for this project' >&2\nexit 1\n")
    (bin_dir / "pipenv").chmod(0o755)
    assert componentize_site_dirs({"PATH": str(bin_dir)}) == []  # no python3 on PATH either
    (bin_dir / "python3").symlink_to(sys.executable)
    assert componentize_site_dirs({"PATH": str(bin_dir)})  # python3's directories


def test_a_pipenv_environment_without_site_packages(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "env" / "lib").mkdir(parents=True)
    (bin_dir / "pipenv").write_text(f"#!/bin/sh\necho {tmp_path / 'env'}\n")
    (bin_dir / "pipenv").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    assert componentize_site_dirs({"PATH": str(bin_dir)}) == []


def test_the_site_packages_search_goes_depth_first(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "lib" / "python3.12" / "nested" / "site-packages").mkdir(parents=True)
    (venv / "lib" / "python3.12" / "notes.txt").write_text("")  # a file on the way is not a directory to search
    assert componentize_site_dirs({"VIRTUAL_ENV": str(venv)}) == [
        (venv / "lib" / "python3.12" / "nested" / "site-packages").resolve()
    ]



def test_a_distribution_whose_files_are_all_nested_owns_its_top_level_entry(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "deep", ["deep/sub/x.py,sha256=aaa,1"], {"deep/sub/x.py": b""})
    assert provider_digests([site], ["deep"])[0][1].startswith("deep-1.0.dist-info:")


def test_rows_after_a_compiled_file_still_count(tmp_path: Path) -> None:
    pyc = "pkg/__pycache__/mod.cpython-312.pyc,sha256=ppp,9"
    _dist(tmp_path / "a", "pkg", [pyc, "pkg/mod.py,sha256=aaa,1"], {"pkg/mod.py": b""})
    _dist(tmp_path / "b", "pkg", [pyc, "pkg/mod.py,sha256=bbb,1"], {"pkg/mod.py": b""})
    assert provider_digests([tmp_path / "a"], ["pkg"]) != provider_digests([tmp_path / "b"], ["pkg"])


def test_a_loose_package_counts_by_the_files_of_its_subpackages(tmp_path: Path) -> None:
    (tmp_path / "loose" / "sub").mkdir(parents=True)
    (tmp_path / "loose" / "sub" / "mod.py").write_text("A = 1\n")
    before = provider_digests([tmp_path], ["loose"])
    (tmp_path / "loose" / "sub" / "mod.py").write_text("A = 2\n")
    assert provider_digests([tmp_path], ["loose"]) != before


@pytest.mark.parametrize(("width", "encoding"), [(1, "ascii"), (2, "utf-16-le"), (4, "utf-32-le")])
def test_a_guest_path_is_matched_in_each_width(width: int, encoding: str) -> None:
    """The pattern of one width, on `/12/name` held in characters of that width (after its leading `/`)."""
    from hatch_component_init.hatch.site_packages import _guest_path

    held = "/12/name.py".encode(encoding)[1:]
    match = re.fullmatch(_guest_path(width), held)
    assert match is not None
    assert [group.replace(b"\0", b"") for group in match.groups()] == [b"12", b"name.py"]


def test_a_loose_package_counts_by_its_files_not_its_empty_directories(tmp_path: Path) -> None:
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "__init__.py").write_text("")
    before = provider_digests([tmp_path], ["loose"])
    (tmp_path / "loose" / "empty").mkdir()
    assert provider_digests([tmp_path], ["loose"]) == before


def test_pipenv_and_python3_run_in_the_build_environment(tmp_path: Path) -> None:
    """Both are asked with the environment the build hands over, not the one of the process running the hook."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "env" / "lib" / "site-packages").mkdir(parents=True)
    (bin_dir / "pipenv").write_text('#!/bin/sh\necho "$WHERE"\n')
    (bin_dir / "pipenv").chmod(0o755)
    env = {"PATH": str(bin_dir), "WHERE": str(tmp_path / "env")}
    assert componentize_site_dirs(env) == [(tmp_path / "env" / "lib" / "site-packages").resolve()]
    (bin_dir / "pipenv").unlink()
    (bin_dir / "python3").symlink_to(sys.executable)
    found = componentize_site_dirs({"PATH": str(bin_dir), "PYTHONUSERBASE": str(tmp_path / "userbase")})
    assert str(found[0]).startswith(str(tmp_path / "userbase"))


def test_a_linked_distribution_counts_by_its_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "sdk", ["sdk/componentize-py.toml,sha256=aaa,0", "sdk/bindings.py,sha256=bbb,1"])
    before = linked_distributions([site])
    _dist(site, "sdk", ["sdk/componentize-py.toml,sha256=aaa,0", "sdk/bindings.py,sha256=BBB,1"])
    assert linked_distributions([site]) != before

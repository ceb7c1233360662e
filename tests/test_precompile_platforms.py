"""The platform helpers of hatch/precompile.py on every platform they name, not only the one running the tests.

Each helper takes the machine's facts as parameters (defaulting to this machine's), so the
macOS, Windows, musl and unsupported branches are checked here with the other platforms' values.
"""

from __future__ import annotations

import platform
import sys
import sysconfig
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.tags import platform_tags

from hatch_component_init.errors import PrecompileError
from hatch_component_init.hatch.loader_template import host_platform
from hatch_component_init.hatch.precompile import (
    _linux_libc,
    _single_arch,
    _wasmtime_wheel_platforms,
    _wheel_platforms,
    host_target,
    wheel_tag,
)

TARGETS = {
    "linux-gnu": ((("x86_64", "linux"), "gnu"), "x86_64-unknown-linux-gnu"),
    "linux-musl": ((("aarch64", "linux"), "musl"), "aarch64-unknown-linux-musl"),
    "macos": ((("aarch64", "darwin"), None), "aarch64-apple-darwin"),
    "windows": ((("x86_64", "windows"), None), "x86_64-pc-windows-msvc"),
}


@pytest.mark.parametrize(("given", "triple"), TARGETS.values(), ids=TARGETS.keys())
def test_the_target_triple_of_each_supported_platform(given: tuple[tuple[str, str], str | None], triple: str) -> None:
    found, libc = given
    assert host_target(found, libc=libc) == triple


def test_the_target_triple_of_this_machine() -> None:
    found = host_platform()
    assert found is not None, "the suite runs on a supported platform"
    arch, system = found
    expected = {"linux": f"{arch}-unknown-linux-{_linux_libc()}", "darwin": f"{arch}-apple-darwin"}
    assert host_target() == expected.get(system, f"{arch}-pc-windows-msvc")


UNSUPPORTED = {
    "32-bit": (("i686", "linux", 2**31 - 1), "(i686, linux, 32-bit)"),
    "maxsize-exactly-2**32": (("x86_64", "linux", 2**32), "(x86_64, linux, 32-bit)"),
    "maxsize-just-above-2**32": (("x86_64", "linux", 2**32 + 1), "(x86_64, linux, 64-bit)"),
    "64-bit-other-machine": (("riscv64", "freebsd14", 2**63 - 1), "(riscv64, freebsd14, 64-bit)"),
    "no-machine-name": (("", "linux", 2**63 - 1), "(unknown machine, linux, 64-bit)"),
}


@pytest.mark.parametrize(("facts", "named"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_an_unsupported_platform_is_refused_naming_it(facts: tuple[str, str, int], named: str) -> None:
    machine, system, maxsize = facts
    with pytest.raises(PrecompileError) as caught:
        host_target(None, machine, system, maxsize)
    assert str(caught.value) == (
        "Option `precompile` for build hook `component-init` is not supported on this platform "
        f"{named}: precompiled components are made for 64-bit x86_64 and aarch64 Linux, macOS and Windows; "
        "set `precompile = false` (the component still works, it is compiled at its first start)"
    )


def test_the_refusal_names_this_machine_by_default() -> None:
    with pytest.raises(PrecompileError) as caught:
        host_target(None)
    bits = 64 if sys.maxsize > 2**32 else 32
    assert f"({platform.machine() or 'unknown machine'}, {sys.platform}, {bits}-bit): " in str(caught.value)


LIBCS = {
    "glibc": (("glibc", "x86_64-pc-linux-gnu"), "gnu"),
    "musl-by-name": (("musl", "x86_64-pc-linux-gnu"), "musl"),
    # libc_ver() finds nothing on musl: the build's host type decides.
    "musl-by-build-type": (("", "aarch64-unknown-linux-musl"), "musl"),
    "gnu-by-build-type": (("", "aarch64-unknown-linux-gnu"), "gnu"),
    "neither-known": (("", "None"), "gnu"),
}


@pytest.mark.parametrize(("facts", "libc"), LIBCS.values(), ids=LIBCS.keys())
def test_the_c_library_is_read_from_the_interpreter_then_its_build(facts: tuple[str, str], libc: str) -> None:
    assert _linux_libc(*facts) == libc


def test_the_c_library_of_this_interpreter() -> None:
    import sysconfig

    name = platform.libc_ver()[0] or str(sysconfig.get_config_var("HOST_GNU_TYPE"))
    assert _linux_libc() == ("musl" if "musl" in name else "gnu")
    # The interpreter's C library decides when it names one; the build type only when it does not.
    if platform.libc_ver()[0]:
        assert _linux_libc(None, "x86_64-unknown-linux-musl") == _linux_libc()
    # Each fact is read only when it is not given.
    assert _linux_libc("", "x86_64-linux-musl") == "musl"
    assert _linux_libc("musl") == "musl"


SINGLE_ARCH = {
    "universal2": (("macosx_11_0_universal2", "arm64"), "macosx_11_0_arm64"),
    "universal": (("macosx_10_9_universal", "x86_64"), "macosx_10_9_x86_64"),
    "already-single": (("macosx_11_0_arm64", "x86_64"), "macosx_11_0_arm64"),
    "linux-is-left-alone": (("manylinux_2_17_x86_64", "aarch64"), "manylinux_2_17_x86_64"),
    "universal-but-not-macos": (("linux_universal2", "arm64"), "linux_universal2"),
}


@pytest.mark.parametrize(("given", "tag"), SINGLE_ARCH.values(), ids=SINGLE_ARCH.keys())
def test_a_fat_macos_tag_is_narrowed_to_the_machine(given: tuple[str, str], tag: str) -> None:
    assert _single_arch(*given) == tag


def test_a_fat_macos_tag_is_narrowed_to_this_machine_by_default() -> None:
    assert _single_arch("macosx_11_0_universal2") == f"macosx_11_0_{platform.machine()}"


def test_the_platforms_of_a_wheel_file() -> None:
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: bdist_wheel (0.42.0)\n"
        "Root-Is-Purelib: false\n"
        "Tag: py3-none-macosx_11_0_universal2\n"
        "Tag : py3-none-macosx_10_9_universal.macosx_11_0_arm64\n"
        "Tag: cp311-abi3-macosx_11_0_arm64\n"
        "Tag: py3-none-any\n"
        "Tags: py3-none-win_amd64\n"
    )
    # One each, in order; `any` is not a platform; only `Tag` lines count.
    assert _wheel_platforms(wheel, "arm64") == ["macosx_11_0_arm64", "macosx_10_9_arm64"]
    assert _wheel_platforms("Tag: py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64\n", "x86_64") == [
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ]
    assert _wheel_platforms("Tag: py3-none-any\n", "x86_64") == []
    assert _wheel_platforms("Tag: py3-none-macosx_11_0_universal2\n") == [f"macosx_11_0_{platform.machine()}"]


def test_the_installed_wasmtime_wheel_decides_the_tag() -> None:
    text = distribution("wasmtime").read_text("WHEEL") or ""
    expected = _wheel_platforms(text)
    assert expected and _wasmtime_wheel_platforms() == expected
    assert wheel_tag() == "py3-none-" + ".".join(expected)
    # A distribution that is not installed has no platforms (wheel_tag() then uses the interpreter's).
    assert _wasmtime_wheel_platforms("no-such-distribution-xyz") == []



def _installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, wheel: str | None) -> None:
    """A distribution ``name`` found before any other of that name, with ``wheel`` as its WHEEL file (``None``: none)."""
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if wheel is not None:
        (info / "WHEEL").write_text(wheel)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_distribution_without_a_wheel_file_has_no_platforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Installed some other way than from a wheel: metadata, no WHEEL.
    _installed(tmp_path, monkeypatch, "nowheel", None)
    assert distribution("nowheel").read_text("WHEEL") is None
    assert _wasmtime_wheel_platforms("nowheel") == []


def test_a_wasmtime_wheel_for_several_platforms_claims_them_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PEP 425's compressed tag set: one wheel, each platform joined by a dot.
    _installed(tmp_path, monkeypatch, "wasmtime", "Tag: py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64\n")
    assert wheel_tag() == "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64"


def test_without_a_wasmtime_wheel_the_tag_is_the_interpreters_generic_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _installed(tmp_path, monkeypatch, "wasmtime", None)
    tag = wheel_tag().removeprefix("py3-none-")
    # One tag that an installer on this machine accepts, and not a manylinux/musllinux claim
    # that nothing checked (hatchling infers the same for a platform wheel).
    assert tag in list(platform_tags())
    assert "manylinux" not in tag and "musllinux" not in tag
    if sys.platform == "linux":
        assert tag == sysconfig.get_platform().replace("-", "_").replace(".", "_")

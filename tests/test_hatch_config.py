"""Option validation of both build hooks: one class per option, exact messages (as hatchling tests its hooks)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from hatch_component_init.hatch.component_init import ComponentInitBuildHook
from hatch_component_init.hatch.componentize import ComponentizePyBuildHook
from hatch_component_init.options import DEFAULT_INIT_FUNC, DEFAULT_TIMEOUT, WasiOptions


def init_hook(root: Path, **config: Any) -> ComponentInitBuildHook:
    config.setdefault("component", "build/app.wasm")
    return ComponentInitBuildHook(str(root), config, None, None, str(root), "wheel")


def componentize_hook(root: Path, **config: Any) -> ComponentizePyBuildHook:
    config.setdefault("module", "app")
    config.setdefault("output", "build/app.wasm")
    return ComponentizePyBuildHook(str(root), config, None, None, str(root), "wheel")


class TestConfigComponent:
    def test_correct(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, component="build/app.wasm").config_component == "build/app.wasm"

    def test_missing(self, tmp_path: Path) -> None:
        hook = ComponentInitBuildHook(str(tmp_path), {}, None, None, str(tmp_path), "wheel")
        with pytest.raises(ValueError, match="^Option `component` for build hook `component-init` is required$"):
            _ = hook.config_component

    def test_empty(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="^Option `component` for build hook `component-init` is required$"):
            _ = init_hook(tmp_path, component="").config_component

    def test_not_string(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="^Option `component` for build hook `component-init` must be a string$"):
            _ = init_hook(tmp_path, component=9000).config_component


class TestConfigDestination:
    def test_default_is_component(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, component="pkg/app.wasm").config_destination == "pkg/app.wasm"

    def test_correct(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, destination="pkg/./app.wasm").config_destination == "pkg/app.wasm"

    def test_not_string(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="^Option `destination` for build hook `component-init` must be a string$"):
            _ = init_hook(tmp_path, destination=["pkg/app.wasm"]).config_destination

    @pytest.mark.parametrize("path", ["/pkg/app.wasm", "../app.wasm", "pkg/../../app.wasm", ".", "C:/app.wasm"])
    def test_outside_wheel(self, tmp_path: Path, path: str) -> None:
        message = (
            "^Option `destination` for build hook `component-init` must be a relative path inside the wheel, "
            f"not `{path}`$"
        )
        with pytest.raises(ValueError, match=message):
            _ = init_hook(tmp_path, destination=path).config_destination


class TestConfigInitFunc:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_init_func == DEFAULT_INIT_FUNC == "component-init"

    def test_correct(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, **{"init-func": 'setup("x", 42)'}).config_init_func == 'setup("x", 42)'

    @pytest.mark.parametrize("value", [True, 42, ["setup"]])
    def test_not_string_or_false(self, tmp_path: Path, value: object) -> None:
        message = "^Option `init-func` for build hook `component-init` must be a string, or `false`$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, **{"init-func": value}).config_init_func

    def test_false_is_no_init(self, tmp_path: Path) -> None:
        (tmp_path / "build").mkdir()
        (tmp_path / "build/app.wasm").write_bytes(b"")
        hook = init_hook(tmp_path, **{"init-func": False, "precompile": True, "loader": "pkg/_c.py", "cache": False})
        hook.validate()
        assert hook.config_init_func is None

    def test_empty_is_the_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, **{"init-func": ""}).config_init_func == DEFAULT_INIT_FUNC

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("keep-init-func", False),
            ("wasi", True),
            ("dirs", {"data": "/data"}),
            ("env", {"A": "1"}),
            ("timeout", 10),
            ("max-memory", 1 << 20),
            ("host", "host_defs:define"),
        ],
    )
    def test_false_refuses_the_options_of_an_init_run(self, tmp_path: Path, option: str, value: object) -> None:
        (tmp_path / "data").mkdir()
        (tmp_path / "host_defs.py").write_text("def define(linker): pass\n")
        hook = init_hook(tmp_path, **{"init-func": False, option: value})
        message = (
            f"^Option `{option}` for build hook `component-init` configures the init run, but `init-func = false` "
            f"ships the component without one: remove `{option}`, or name the component's init function in `init-func`$"
        )
        with pytest.raises(ValueError, match=message):
            hook.validate()


class TestConfigKeepInitFunc:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_keep_init_func is False

    def test_correct(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, **{"keep-init-func": True}).config_keep_init_func is True

    def test_not_boolean(self, tmp_path: Path) -> None:
        message = "^Option `keep-init-func` for build hook `component-init` must be a boolean$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, **{"keep-init-func": "yes"}).config_keep_init_func


class TestConfigResetFirstCall:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_reset_first_call is True

    def test_correct(self, tmp_path: Path) -> None:
        hook = init_hook(tmp_path, **{"reset-first-call": False})
        assert hook.config_reset_first_call is False
        assert hook.init_options.reset_first_call is False

    def test_not_boolean(self, tmp_path: Path) -> None:
        message = "^Option `reset-first-call` for build hook `component-init` must be a boolean$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, **{"reset-first-call": "no"}).config_reset_first_call


class TestConfigRebuildOnLoad:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_rebuild_on_load is True

    def test_correct(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, **{"rebuild-on-load": False}).config_rebuild_on_load is False

    def test_not_boolean(self, tmp_path: Path) -> None:
        message = "^Option `rebuild-on-load` for build hook `component-init` must be a boolean$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, **{"rebuild-on-load": "no"}).config_rebuild_on_load


class TestConfigWasi:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_wasi is True

    def test_disabled(self, tmp_path: Path) -> None:
        hook = init_hook(tmp_path, wasi=False)
        assert hook.init_options.wasi == WasiOptions(enabled=False)

    def test_not_boolean(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="^Option `wasi` for build hook `component-init` must be a boolean$"):
            _ = init_hook(tmp_path, wasi=1).config_wasi


class TestConfigDirs:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_dirs == {}

    def test_correct(self, tmp_path: Path) -> None:
        hook = init_hook(tmp_path, dirs={"data": "/data", "more/assets": "/assets"})
        assert hook.init_options.wasi.dirs == ((tmp_path / "data", "/data"), (tmp_path / "more/assets", "/assets"))

    @pytest.mark.parametrize("value", [["data"], "data", {"data": 1}, {"data": ["/data"]}])
    def test_not_table_of_strings(self, tmp_path: Path, value: object) -> None:
        message = "^Option `dirs` for build hook `component-init` must be a table of strings$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, dirs=value).config_dirs

    def test_empty_guest_path(self, tmp_path: Path) -> None:
        message = (
            "^Option `dirs` for build hook `component-init` must map non-empty host paths to non-empty guest paths$"
        )
        with pytest.raises(ValueError, match=message):
            _ = init_hook(tmp_path, dirs={"data": ""}).config_dirs

    def test_needs_wasi(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="^Option `dirs` for build hook `component-init` needs `wasi = true`$"):
            _ = init_hook(tmp_path, wasi=False, dirs={"data": "/data"}).config_dirs


class TestConfigEnv:
    def test_correct(self, tmp_path: Path) -> None:
        hook = init_hook(tmp_path, env={"B": "2", "A": "1"})
        # Kept in table order: the guest can see the order of its environment.
        assert hook.init_options.wasi.env == (("B", "2"), ("A", "1"))

    def test_not_table_of_strings(self, tmp_path: Path) -> None:
        message = "^Option `env` for build hook `component-init` must be a table of strings$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, env={"DEBUG": True}).config_env

    def test_bad_name(self, tmp_path: Path) -> None:
        message = "^Option `env` for build hook `component-init` must have non-empty variable names without `=`$"
        with pytest.raises(ValueError, match=message):
            _ = init_hook(tmp_path, env={"A=B": "1"}).config_env

    def test_needs_wasi(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="^Option `env` for build hook `component-init` needs `wasi = true`$"):
            _ = init_hook(tmp_path, wasi=False, env={"A": "1"}).config_env


class TestConfigCache:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_cache is True

    def test_not_boolean(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="^Option `cache` for build hook `component-init` must be a boolean$"):
            _ = init_hook(tmp_path, cache="no").config_cache


class TestConfigTimeout:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_timeout == DEFAULT_TIMEOUT

    @pytest.mark.parametrize("value", [1, 2.5])
    def test_correct(self, tmp_path: Path, value: float) -> None:
        assert init_hook(tmp_path, timeout=value).init_options.timeout == value

    @pytest.mark.parametrize("value", ["300", True])
    def test_not_number(self, tmp_path: Path, value: object) -> None:
        with pytest.raises(TypeError, match="^Option `timeout` for build hook `component-init` must be a number$"):
            _ = init_hook(tmp_path, timeout=value).config_timeout

    @pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
    def test_not_positive(self, tmp_path: Path, value: float) -> None:
        message = "^Option `timeout` for build hook `component-init` must be a positive number$"
        with pytest.raises(ValueError, match=message):
            _ = init_hook(tmp_path, timeout=value).config_timeout


class TestConfigMaxMemory:
    def test_default(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path).config_max_memory is None

    def test_correct(self, tmp_path: Path) -> None:
        assert init_hook(tmp_path, **{"max-memory": 1 << 30}).init_options.max_memory == 1 << 30

    @pytest.mark.parametrize("value", ["1GiB", 1.5, False])
    def test_not_integer(self, tmp_path: Path, value: object) -> None:
        message = "^Option `max-memory` for build hook `component-init` must be an integer$"
        with pytest.raises(TypeError, match=message):
            _ = init_hook(tmp_path, **{"max-memory": value}).config_max_memory

    def test_not_positive(self, tmp_path: Path) -> None:
        message = "^Option `max-memory` for build hook `component-init` must be a positive integer$"
        with pytest.raises(ValueError, match=message):
            _ = init_hook(tmp_path, **{"max-memory": 0}).config_max_memory


class TestUnknownOptions:
    def test_refused_with_suggestion(self, tmp_path: Path) -> None:
        config = {
            "component": "app.wasm",
            "destinaton": "pkg/app.wasm",
            # Hatch's own keys of every hook table are accepted.
            "dependencies": ["x"],
            "enable-by-default": True,
            "require-runtime-dependencies": False,
            "require-runtime-features": [],
        }
        hook = ComponentInitBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel")
        message = "^Unknown option `destinaton` for build hook `component-init`; did you mean `destination`\\?$"
        with pytest.raises(ValueError, match=message):
            hook.validate()

    def test_hatch_own_options_accepted(self, tmp_path: Path) -> None:
        config = {"component": "app.wasm", "dependencies": ["x"], "enable-by-default": True}
        (tmp_path / "app.wasm").write_bytes(b"")
        ComponentInitBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel").validate()

    @pytest.mark.parametrize(("key", "suggestion"), [("python_path", "python-path"), ("worl", "world")])
    def test_componentize_refused_with_suggestion(self, tmp_path: Path, key: str, suggestion: str) -> None:
        (tmp_path / "wit").mkdir()
        config = {"module": "app", "output": "build/app.wasm", key: ".", "dependencies": []}
        hook = ComponentizePyBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel")
        message = f"^Unknown option `{key}` for build hook `componentize-py`; did you mean `{suggestion}`\\?$"
        with pytest.raises(ValueError, match=message):
            hook.validate()

    def test_no_suggestion_lists_the_options(self, tmp_path: Path) -> None:
        hook = ComponentInitBuildHook(str(tmp_path), {"component": "a.wasm", "zzz": 1}, None, None, str(tmp_path), "wheel")
        message = (
            "^Unknown option `zzz` for build hook `component-init`; its options are `cache`, `component`, "
            "`destination`, `dirs`, `env`, `host`, `init-func`, `keep-init-func`, `loader`, `max-memory`, `precompile`, "
            "`rebuild-on-load`, `reset-first-call`, `timeout`, `wasi`, `zero-free-memory`$"
        )
        with pytest.raises(ValueError, match=message):
            hook.validate()


class TestComponentizePyOptions:
    def test_command(self, tmp_path: Path) -> None:
        hook = componentize_hook(tmp_path, wit="api", world="lexicon", module="guest", **{"python-path": ["src", "."]})
        command = hook.command(tmp_path / "out.wasm")
        assert command[0] == sys.executable
        assert command[3:] == [
            *("-d", "api", "-w", "lexicon", "componentize"),
            *("-p", "src", "-p", ".", "guest", "-o", str(tmp_path / "out.wasm")),
        ]

    def test_defaults(self, tmp_path: Path) -> None:
        hook = componentize_hook(tmp_path)
        assert hook.config_wit == "wit"
        assert hook.config_world is None
        assert hook.config_python_path == ["."]
        output = str(tmp_path / "o.wasm")
        assert hook.command(tmp_path / "o.wasm")[3:] == ["-d", "wit", "componentize", "-p", ".", "app", "-o", output]

    @pytest.mark.parametrize("option", ["module", "output"])
    def test_required(self, tmp_path: Path, option: str) -> None:
        config = {"module": "app", "output": "build/app.wasm"}
        del config[option]
        hook = ComponentizePyBuildHook(str(tmp_path), config, None, None, str(tmp_path), "wheel")
        with pytest.raises(ValueError, match=f"^Option `{option}` for build hook `componentize-py` is required$"):
            hook.validate()

    @pytest.mark.parametrize("option", ["wit", "world", "module", "output"])
    def test_not_string(self, tmp_path: Path, option: str) -> None:
        hook = componentize_hook(tmp_path, **{option: 3})
        with pytest.raises(TypeError, match=f"^Option `{option}` for build hook `componentize-py` must be a string$"):
            hook.validate()

    @pytest.mark.parametrize("value", ["src", [1], [""]])
    def test_python_path_not_array(self, tmp_path: Path, value: object) -> None:
        hook = componentize_hook(tmp_path, **{"python-path": value})
        message = "^Option `python-path` for build hook `componentize-py` must be an array of strings$"
        with pytest.raises(TypeError, match=message):
            hook.validate()

    def test_output_outside_project(self, tmp_path: Path) -> None:
        hook = componentize_hook(tmp_path, output="../elsewhere.wasm")
        message = (
            "^Option `output` for build hook `componentize-py` must be a relative path inside the project, "
            "not `../elsewhere.wasm`$"
        )
        with pytest.raises(ValueError, match=message):
            hook.validate()

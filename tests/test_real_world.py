"""Components as people ship them: wasi:http apps, `--stub-wasi` builds, custom imports with resources,
and inits that leave handles open. Each output is run to prove it works."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import wasmtime
from wasmtime import component as cm
from conftest import FIXTURES, componentize, wasi_wit_dir
from wat_support import CLI_WINCH, Running, app_engine, engine, engine_for, snapshot, wat

from hatch_component_init import InitFailedError, WasiOptions, pre_initialize, pre_initialize_with


def _wit_with_wasi_deps(app: Path, tmp: Path) -> Path:
    """The app's WIT beside the WASI packages it includes (from spin-sdk), as componentize-py wants them."""
    wit = tmp / "wit"
    shutil.copytree(app / "wit", wit)
    (wit / "deps").symlink_to(wasi_wit_dir() / "deps", target_is_directory=True)
    return wit


@pytest.fixture(scope="session")
def http_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("http-app")
    app = FIXTURES / "http_app"
    return componentize(app, "app", "app", tmp / "http.wasm", wit=_wit_with_wasi_deps(app, tmp))


#: The notes of the http app's pre-initialization (by default: its free allocator memory zeroed).
HTTP_NOTES: list[tuple[str, str]] = []


@pytest.fixture(scope="session")
def http_snapshot(http_component: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    output: list[tuple[str, bytes]] = []
    data = pre_initialize(
        http_component,
        wasi=WasiOptions(dirs=((FIXTURES / "http_app" / "data", "/data"),)),
        on_output=lambda stream, chunk: output.append((stream, chunk)),
        on_note=lambda level, message: HTTP_NOTES.append((level, message)),
    )
    return data, output


@pytest.fixture(scope="session")
def handles_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return componentize(FIXTURES / "handles", "handles", "app", tmp_path_factory.mktemp("handles") / "h.wasm")


@pytest.fixture(scope="session")
def stub_wasi_component(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("stub") / "stub.wasm"
    return componentize(FIXTURES / "handles", "handles", "app", out, extra=("--stub-wasi",))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(
    wasmtime_cli: Path, component: Path, log: Path, requests: list[str], options: tuple[str, ...] = ()
) -> list[str]:
    """Serve ``component`` with `wasmtime serve` (and ``options``) on loopback, send ``requests`` (paths),
    return the bodies."""
    # The port is free when asked for but may be taken before the server binds it (another test,
    # another xdist worker): a server that exits because its address is in use gets a new port.
    for _attempt in range(5):
        port = _free_port()
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(wasmtime_cli), "serve", *CLI_WINCH, "-Scli", *options, "--addr", f"127.0.0.1:{port}", str(component)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while b"Serving HTTP" not in log.read_bytes() and server.poll() is None:
            assert time.monotonic() < deadline, "wasmtime serve did not start"
            time.sleep(0.1)
        if server.poll() is None or b"in use" not in log.read_bytes():
            break
    try:
        assert server.poll() is None, log.read_text()
        bodies = []
        for path in requests:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
                assert response.status == 200
                bodies.append(response.read().decode())
        return bodies
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_wasi_http_app_is_served_from_the_snapshot_in_the_environment_it_is_served_with(
    http_snapshot, wasmtime_cli: Path, tmp_path: Path
) -> None:
    data, init_output = http_snapshot
    assert b"".join(chunk for stream, chunk in init_output if stream == "stdout") == b"init: loaded 7 words\n"
    out = tmp_path / "http.init.wasm"
    out.write_bytes(data)
    log = tmp_path / "serve.log"
    # Our output by default: the free allocator memory zeroed (docs/performance.md, Free allocator memory).
    assert [level for level, message in HTTP_NOTES if "allocator" in message] == ["info"], HTTP_NOTES
    requests = ["/", "/word/2", "/word/6", "/", "/env/GREETING", "/env/UNSET", "/dice", "/dice"]
    bodies = _serve(wasmtime_cli, out, log, requests, ("--env", "GREETING=served"))
    # No /data is granted at run time: the words can only come from the snapshot.
    assert bodies[:4] == [
        "words=7 initialized=True served=1",
        "cherry of 7 initialized=True",
        "grape of 7 initialized=True",
        "words=7 initialized=True served=1",
    ]
    printed = log.read_text()
    assert "serving /word/2 (request 1)" in printed and "serving /word/6 (request 1)" in printed
    # componentize-py's first-call setup runs again per request (one fresh instance each, see first_call.py):
    # each sees the environment it is served with, and draws its own random numbers.
    assert bodies[4:6] == ["served", "(unset)"]
    assert bodies[6] != bodies[7]


@pytest.mark.slow
def test_wasi_http_output_has_no_init_export_and_keeps_its_imports(http_snapshot, http_component) -> None:
    data, _ = http_snapshot
    eng = app_engine()
    before = cm.Component(eng, http_component)
    after = cm.Component(eng, data)
    assert "component-init" in before.type.exports(eng) and "component-init" not in after.type.exports(eng)
    assert sorted(after.type.imports(eng)) == sorted(before.type.imports(eng))
    assert any(name.startswith("wasi:http/outgoing-handler@") for name in after.type.imports(eng))


@pytest.mark.slow
def test_wasi_http_init_may_not_use_the_network(http_component) -> None:
    with pytest.raises(InitFailedError) as e:
        pre_initialize(http_component, init_func="try-network")
    message = str(e.value)
    assert "init may not use the network" in message
    assert "wasi:http/outgoing-handler@0.2." in message and "#handle" in message


@pytest.mark.slow
@pytest.mark.parametrize("wasi", [True, False], ids=["wasi", "no-wasi"])
def test_stub_wasi_build_pre_initializes(stub_wasi_component: bytes, wasi: bool) -> None:
    data = pre_initialize(stub_wasi_component, wasi=WasiOptions() if wasi else None)
    # The stub build imports no WASI: run it with every import trapping.
    run = Running(data, wasi=False)
    assert not run.has("component-init")
    assert run.call("state") == "squares=1000 notes=''"


@pytest.mark.slow
@pytest.mark.parametrize("init", ["keep-file-open", "keep-dir-open"])
def test_init_that_leaves_a_descriptor_open_is_refused(handles_component: bytes, init: str) -> None:
    dirs = WasiOptions(dirs=((FIXTURES / "handles" / "data", "/data"),))
    with pytest.raises(InitFailedError) as e:
        pre_initialize(handles_component, init_func=init, wasi=dirs)
    message = str(e.value)
    assert f"`{init}` left 1 file, directory or socket descriptor open (number 4)" in message
    assert "close it before init returns" in message


@pytest.mark.slow
def test_open_descriptors_beyond_the_granted_directories_are_counted(handles_component: bytes, tmp_path: Path) -> None:
    # Two granted directories take numbers 3 and 4; the kept file is 5.
    dirs = WasiOptions(dirs=((FIXTURES / "handles" / "data", "/data"), (tmp_path, "/scratch")))
    with pytest.raises(InitFailedError, match=r"descriptor open \(number 5\)"):
        pre_initialize(handles_component, init_func="keep-file-open", wasi=dirs)


def _runtime_granting(*dirs: tuple[Path, str]):  # type: ignore[no-untyped-def]
    """A caller's runtime for pre_initialize_with: WASI with ``dirs`` preopened, init `read-and-close` called."""
    from hatch_component_init.runtime import WasmtimeInvoker

    def run(instrumented: bytes) -> WasmtimeInvoker:
        eng = engine_for(instrumented)
        store = wasmtime.Store(eng)
        wasi = wasmtime.WasiConfig()
        for host, guest in dirs:
            wasi.preopen_dir(str(host), guest, False)
        store.set_wasi(wasi)
        linker = cm.Linker(eng)
        linker.add_wasip2()
        instance = linker.instantiate(store, cm.Component(eng, instrumented))
        instance.get_func(store, "read-and-close")(store)  # type: ignore[misc]
        return WasmtimeInvoker(instance, store)

    return run


@pytest.mark.slow
def test_pre_initialize_with_counts_the_directories_the_caller_granted(handles_component: bytes, tmp_path: Path) -> None:
    # The caller preopens two directories: wasi-libc numbers them 3 and 4, after stdio.
    run = _runtime_granting((FIXTURES / "handles" / "data", "/data"), (tmp_path, "/scratch"))
    data = pre_initialize_with(handles_component, run, init_func="read-and-close", granted_dirs=2)
    assert Running(data).call("state") == "squares=0 notes='first line\\nsecond line'"
    # Told of one only, the second granted directory looks like a descriptor init left open.
    with pytest.raises(InitFailedError, match=r"left 1 file, directory or socket descriptor open \(number 4\)"):
        pre_initialize_with(handles_component, run, init_func="read-and-close", granted_dirs=1)


@pytest.mark.slow
def test_init_that_closes_what_it_opened_is_snapshotted(handles_component: bytes) -> None:
    dirs = WasiOptions(dirs=((FIXTURES / "handles" / "data", "/data"),))
    data = pre_initialize(handles_component, init_func="read-and-close", wasi=dirs)
    run = Running(data)
    assert run.call("state") == "squares=0 notes='first line\\nsecond line'"


# --- custom imports with resource types (WAT) ---------------------------------------------

_RESOURCE_APP = """
(component
  (import "test:res/store" (instance $store
    (export "thing" (type $thing (sub resource)))
    (export "[constructor]thing" (func (param "n" u32) (result (own $thing))))
    (export "[method]thing.get" (func (param "self" (borrow $thing)) (result u32)))
    (export "lookup" (func (param "k" u32) (result u32)))
  ))
  (alias export $store "thing" (type $thing))
  (alias export $store "[constructor]thing" (func $ctor))
  (alias export $store "[method]thing.get" (func $get))
  (alias export $store "lookup" (func $lookup))
  (core func $ctor_l (canon lower (func $ctor)))
  (core func $get_l (canon lower (func $get)))
  (core func $lookup_l (canon lower (func $lookup)))
  (core func $drop (canon resource.drop $thing))
  (core module $m
    (import "host" "ctor" (func $ctor (param i32) (result i32)))
    (import "host" "get" (func $get (param i32) (result i32)))
    (import "host" "lookup" (func $lookup (param i32) (result i32)))
    (import "host" "drop" (func $drop (param i32)))
    (global $g (mut i32) (i32.const 0))
    (func (export "init") (global.set $g (i32.const 42)))
    (func (export "init-looks-up") (global.set $g (call $lookup (i32.const 7))))
    (func (export "init-makes-thing") (drop (call $ctor (i32.const 1))))
    (func (export "value") (result i32) (global.get $g))
    (func (export "use-thing") (result i32) (local $h i32) (local $v i32)
      (local.set $h (call $ctor (i32.const 1)))
      (local.set $v (call $get (local.get $h)))
      (call $drop (local.get $h))
      (i32.add (local.get $v) (global.get $g))))
  (core instance $hi
    (export "ctor" (func $ctor_l)) (export "get" (func $get_l))
    (export "lookup" (func $lookup_l)) (export "drop" (func $drop)))
  (core instance $i (instantiate $m (with "host" (instance $hi))))
  (func (export "component-init") (canon lift (core func $i "init")))
  (func (export "init-looks-up") (canon lift (core func $i "init-looks-up")))
  (func (export "init-makes-thing") (canon lift (core func $i "init-makes-thing")))
  (func (export "value") (result u32) (canon lift (core func $i "value")))
  (func (export "use-thing") (result u32) (canon lift (core func $i "use-thing")))
)
"""


def _run_with_store_host(data: bytes) -> tuple[wasmtime.Store, cm.Instance]:
    """Instantiate ``data`` with a real `test:res/store`: things hold their number, lookup doubles."""
    eng = engine()
    store = wasmtime.Store(eng)
    linker = cm.Linker(eng)
    thing = cm.ResourceType.host(7)
    with linker.root() as root:
        with root.add_instance("test:res/store") as inst:
            inst.add_resource("thing", thing, lambda store, rep: None)
            inst.add_func("[constructor]thing", lambda store, n: cm.ResourceHost.own(n, 7))
            inst.add_func("[method]thing.get", lambda store, this: this.to_host(store).rep * 100)
            inst.add_func("lookup", lambda store, k: k * 2)
    return store, linker.instantiate(store, cm.Component(eng, data))


@pytest.mark.parametrize("wasi", [True, False], ids=["wasi", "no-wasi"])
def test_custom_imports_with_resources_stand_in_during_init(wasi: bool) -> None:
    data = snapshot(wat(_RESOURCE_APP), wasi=WasiOptions() if wasi else None)
    store, inst = _run_with_store_host(data)
    assert inst.get_func(store, "component-init") is None
    assert inst.get_func(store, "value")(store) == 42  # type: ignore[misc]
    # The output still imports the interface, and a real host's resource works with it.
    assert inst.get_func(store, "use-thing")(store) == 100 + 42  # type: ignore[misc]


@pytest.mark.parametrize(
    ("init", "named"),
    [("init-looks-up", "test:res/store#lookup"), ("init-makes-thing", "test:res/store#[constructor]thing")],
)
def test_custom_import_called_by_init_traps_naming_it(init: str, named: str) -> None:
    with pytest.raises(InitFailedError) as e:
        snapshot(wat(_RESOURCE_APP), init_func=init)
    assert f"the import `{named}` was called during init" in str(e.value)


def test_top_level_imported_resource_and_function_stand_in() -> None:
    app = """
    (component
      (import "handle" (type $h (sub resource)))
      (import "make" (func $make (result (own $h))))
      (core func $make_l (canon lower (func $make)))
      (core module $m
        (import "host" "make" (func (result i32)))
        (global $g (mut i32) (i32.const 0))
        (func (export "init") (global.set $g (i32.const 9)))
        (func (export "value") (result i32) (global.get $g)))
      (core instance $hi (export "make" (func $make_l)))
      (core instance $i (instantiate $m (with "host" (instance $hi))))
      (func (export "component-init") (canon lift (core func $i "init")))
      (func (export "value") (result u32) (canon lift (core func $i "value"))))
    """
    data = snapshot(wat(app), wasi=None)
    eng = engine()
    store = wasmtime.Store(eng)
    linker = cm.Linker(eng)
    with linker.root() as root:
        root.add_resource("handle", cm.ResourceType.host(3), lambda store, rep: None)
        root.add_func("make", lambda store: cm.ResourceHost.own(1, 3))
    inst = linker.instantiate(store, cm.Component(eng, data))
    assert inst.get_func(store, "value")(store) == 9  # type: ignore[misc]

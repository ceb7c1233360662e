"""Host side of the sample: load the shipped component with Wasmtime and call it.

The wheel ships two components:

- ``lexicon.wasm``: pre-initialized at build time by hatch-component-init; the
  anagram index is already in its memory and ``component-init`` is gone.
- ``lexicon-raw.wasm``: the same app as componentize-py built it; it has to read
  ``data/words.txt`` (also shipped) and build the index at every start.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import resources

from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker

__all__ = ["Lexicon", "StartupTimes", "load_component", "make_engine"]

PREINITIALIZED = "lexicon.wasm"
RAW = "lexicon-raw.wasm"


def make_engine() -> Engine:
    config = Config()
    # Compiling 18 MB of code takes seconds; Wasmtime's on-disk cache makes every later start fast.
    config.cache = True
    return Engine(config)


def load_component(engine: Engine, *, raw: bool) -> Component:
    name = RAW if raw else PREINITIALIZED
    resource = resources.files(__package__) / name
    if not resource.is_file():
        message = f"{name} is not installed next to {__package__} (editable installs ship only {PREINITIALIZED})"
        raise FileNotFoundError(message)
    with resources.as_file(resource) as path:
        return Component.from_file(engine, str(path))


@dataclass
class StartupTimes:
    """Seconds spent before the first query could run."""

    load: float = 0.0
    instantiate: float = 0.0
    init: float = 0.0

    @property
    def total(self) -> float:
        return self.load + self.instantiate + self.init


@dataclass
class Lexicon:
    """One instance of the component in its own store."""

    engine: Engine
    component: Component
    raw: bool
    times: StartupTimes = field(default_factory=StartupTimes)

    def __post_init__(self) -> None:
        linker = Linker(self.engine)
        linker.add_wasip2()
        wasi = WasiConfig()
        wasi.inherit_stdout()
        wasi.inherit_stderr()
        self._files = ExitStack()
        if self.raw:
            # Without pre-initialization the app needs its data at run time.
            data = self._files.enter_context(resources.as_file(resources.files(__package__) / "data"))
            wasi.preopen_dir(str(data), "/data", False)
        self.store = Store(self.engine)
        self.store.set_wasi(wasi)

        started = time.perf_counter()
        self.instance = linker.instantiate(self.store, self.component)
        self.times.instantiate = time.perf_counter() - started
        if self.raw:
            started = time.perf_counter()
            self._call("component-init")
            self.times.init = time.perf_counter() - started

    def _call(self, name: str, *args: object) -> object:
        func = self.instance.get_func(self.store, name)
        if func is None:
            message = f"the component has no export `{name}`"
            raise LookupError(message)
        result = func(self.store, *args)
        func.post_return(self.store)
        return result

    def anagrams(self, word: str) -> list[str]:
        return list(self._call("anagrams", word))  # type: ignore[call-overload]

    def suggest(self, word: str) -> list[str]:
        return list(self._call("suggest", word))  # type: ignore[call-overload]

    def stats(self) -> str:
        return str(self._call("stats"))

    @classmethod
    def open(cls, *, raw: bool = False, engine: Engine | None = None) -> Lexicon:
        engine = engine or make_engine()
        started = time.perf_counter()
        component = load_component(engine, raw=raw)
        load = time.perf_counter() - started
        lexicon = cls(engine, component, raw)
        lexicon.times.load = load
        return lexicon

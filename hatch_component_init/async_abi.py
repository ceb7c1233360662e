"""Wasmtime's component-model async API, which the wasmtime package declares (`wasmtime._ffi`) but does not wrap.

A component that imports an `async func` can only be instantiated, and its
exports only called, through Wasmtime's `*_async` functions; an `async func`
export (an async init) can only be called that way. Each returns a future
that is polled here to completion, on the calling thread. The package's own
high-level async API is on its way upstream (wasmtime-py #333); until then
this module and runtime.py are the only users of these bindings.
"""

from __future__ import annotations

import time
from ctypes import POINTER, byref, pointer
from typing import Any, Callable

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as cm
from wasmtime.component._enter import maybe_raise_last_exn

__all__ = ["add_wasi_async", "call_async", "call_raw_async", "instantiate_async", "is_async"]

#: Polls of a pending future before the loop starts sleeping between polls (a guest waiting on a host timer).
_BUSY_POLLS = 1000


def is_async(ty: cm.FuncType) -> bool:
    """Whether ``ty`` is an `async func` (``ty`` must stay referenced during the call: its pointer dies with it)."""
    return bool(ffi.wasmtime_component_func_type_async(ty.ptr()))


def add_wasi_async(linker: cm.Linker, http: bool) -> None:
    """WASI 0.2 (and wasi:http's types if ``http``) in the variant an async store can call."""
    error = ffi.wasmtime_component_linker_add_wasip2_async(linker.ptr())
    if not error and http:
        error = ffi.wasmtime_component_linker_add_wasi_http_async(linker.ptr())
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def _finish(future: Any, error: Any, gave_up: Callable[[], bool]) -> None:
    """Poll ``future`` to completion, delete it, and raise what the call reported."""
    try:
        polls = 0
        while not ffi.wasmtime_call_future_poll(future):
            polls += 1
            if polls > _BUSY_POLLS:
                if gave_up():
                    raise wasmtime.WasmtimeError("the call was interrupted: it waited past its time limit")
                time.sleep(0.001)
    finally:
        ffi.wasmtime_call_future_delete(future)
    if error:
        exception = wasmtime.WasmtimeError._from_ptr(error)
        maybe_raise_last_exn()  # an exception a Python host function raised, as wasmtime-py's sync calls do
        raise exception


def _never() -> bool:
    return False


def instantiate_async(
    linker: cm.Linker, store: wasmtime.Store, component: cm.Component, gave_up: Callable[[], bool] = _never
) -> cm.Instance:
    raw = ffi.wasmtime_component_instance_t()
    error = POINTER(ffi.wasmtime_error_t)()
    future = ffi.wasmtime_component_linker_instantiate_async(
        linker.ptr(), store._context(), component.ptr(), byref(raw), byref(error)
    )
    _finish(future, error, gave_up)
    return cm.Instance._from_raw(raw)


def call_raw_async(func: cm.Func, store: wasmtime.Store, values: Any, count: int, result: Any, gave_up: Callable[[], bool] = _never) -> None:
    """Call ``func`` with C values; its one result (if ``result``) is left in ``result`` for the caller to free."""
    error = POINTER(ffi.wasmtime_error_t)()
    future = ffi.wasmtime_component_func_call_async(
        byref(func._func), store._context(), values, count, result, 1 if result is not None else 0, byref(error)
    )
    _finish(future, error, gave_up)


def call_async(func: cm.Func, store: wasmtime.Store, *args: Any, gave_up: Callable[[], bool] = _never) -> Any:
    """``func(store, *args)`` through the async API: the same conversions as the package's `Func.__call__`."""
    ty = func.type(store)
    params = ty.params
    result_ty = ty.result
    if len(args) != len(params):
        raise TypeError(f"wrong number of parameters provided: given {len(args)}, expected {len(params)}")
    values = (ffi.wasmtime_component_val_t * len(args))()
    converted = 0
    try:
        for (_, param), value in zip(params, args):
            param.convert_to_c(store, value, pointer(values[converted]))
            converted += 1
        result = ffi.wasmtime_component_val_t() if result_ty is not None else None
        call_raw_async(func, store, values, converted, byref(result) if result is not None else None, gave_up)
        if result is None or result_ty is None:
            return None
        return result_ty.convert_from_c(result)  # which frees the C value, as in `Func.__call__`
    finally:
        for i in range(converted):
            ffi.wasmtime_component_val_delete(byref(values[i]))

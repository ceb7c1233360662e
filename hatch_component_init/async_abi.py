"""Wasmtime's component-model async API, which the wasmtime package declares (`wasmtime._ffi`) but does not wrap.

A component that imports an `async func` can only be instantiated, and its
exports only called, through Wasmtime's `*_async` functions; an `async func`
export (an async init) can only be called that way. Each returns a future
that is polled here to completion, on the calling thread. The package's own
high-level async API is on its way upstream (wasmtime-py #333); until then
this module and runtime.py are the only users of these bindings.
"""

from __future__ import annotations

from ctypes import POINTER, byref, pointer
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import component as cm
from wasmtime.component._enter import maybe_raise_last_exn

__all__ = ["call_async", "call_raw_async", "instantiate_async", "is_async"]


def is_async(ty: cm.FuncType) -> bool:
    """Whether ``ty`` is an `async func` (``ty`` must stay referenced during the call: its pointer dies with it)."""
    return bool(ffi.wasmtime_component_func_type_async(ty.ptr()))


def _finish(future: Any, error: Any) -> None:
    """Poll ``future`` to completion, delete it, and raise what the call reported.

    Host functions are synchronous (WASI, the host definitions, the stand-ins), so a
    future completes without waiting on the host; polls after the first are the guest's
    own async work, and Wasmtime reports a guest that waits for nothing as an error.
    """
    try:
        while not ffi.wasmtime_call_future_poll(future):
            pass
    finally:
        ffi.wasmtime_call_future_delete(future)
    if error:
        exception = wasmtime.WasmtimeError._from_ptr(error)
        maybe_raise_last_exn()  # an exception a Python host function raised, as wasmtime-py's sync calls do
        raise exception


def instantiate_async(linker: cm.Linker, store: wasmtime.Store, component: cm.Component) -> cm.Instance:
    raw = ffi.wasmtime_component_instance_t()
    error = POINTER(ffi.wasmtime_error_t)()
    future = ffi.wasmtime_component_linker_instantiate_async(
        linker.ptr(), store._context(), component.ptr(), byref(raw), byref(error)
    )
    _finish(future, error)
    return cm.Instance._from_raw(raw)


def call_raw_async(func: cm.Func, store: wasmtime.Store, values: Any, count: int, result: Any) -> None:
    """Call ``func`` with C values; its one result (if ``result``) is left in ``result`` for the caller to free."""
    error = POINTER(ffi.wasmtime_error_t)()
    future = ffi.wasmtime_component_func_call_async(
        byref(func._func), store._context(), values, count, result, 1 if result is not None else 0, byref(error)
    )
    _finish(future, error)


def call_async(func: cm.Func, store: wasmtime.Store, *args: Any) -> Any:
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
        if result_ty is None:
            call_raw_async(func, store, values, converted, None)
            return None
        result = ffi.wasmtime_component_val_t()
        call_raw_async(func, store, values, converted, byref(result))
        return result_ty.convert_from_c(result)  # which frees the C value, as in `Func.__call__`
    finally:
        for i in range(converted):
            ffi.wasmtime_component_val_delete(byref(values[i]))

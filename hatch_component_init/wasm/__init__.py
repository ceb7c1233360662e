"""The WebAssembly binary format: reading and writing the parts pre-initialization touches.

Nothing here knows about Wasmtime or Hatch.
"""

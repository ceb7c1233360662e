"""The comparison with `wasmtime wizer`: one module per measure, run in order by bench/run.py."""

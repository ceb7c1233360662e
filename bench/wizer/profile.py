"""A cProfile of ours on the 18 MB component."""

from __future__ import annotations


from .common import Bench, log, probe


def run(bench: Bench) -> None:
    log("cProfile of ours on the 18 MB component (code cache warm)")
    bench.results.profile = probe(bench.env, "profile", str(bench.app), str(bench.data), "12")

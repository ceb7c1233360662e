"""``python -m lexicon [--raw | --compile | --compare] WORD...``: anagrams and near misses, and how long start-up took."""

from __future__ import annotations

import argparse
import time

from . import Lexicon, StartupTimes, make_engine


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _describe(times: StartupTimes) -> str:
    return f"{_ms(times.total)} (load {_ms(times.load)}, instantiate {_ms(times.instantiate)}, init {_ms(times.init)})"


def lookup(words: list[str], *, raw: bool, compile: bool = False) -> None:
    opened = time.perf_counter()
    lexicon = Lexicon.open(raw=raw, compile=compile)
    first_answer = 0.0
    for word in words:
        started = time.perf_counter()
        anagrams = lexicon.anagrams(word)
        near = lexicon.suggest(word)
        elapsed = time.perf_counter() - started
        first_answer = first_answer or time.perf_counter() - opened
        print(f"{word}: anagrams: {', '.join(anagrams) or '(none)'}; one edit away: {', '.join(near) or '(none)'}")
        print(f"  ({_ms(elapsed)})")
    print(f"index: {lexicon.stats()}")
    kind = "raw component, init at start-up" if raw else "pre-initialized component"
    print(f"start-up ({kind}): {_describe(lexicon.times)}")
    print(f"  loaded: {lexicon.loaded}; first answer {_ms(first_answer)} after opening")


def compare(words: list[str], rounds: int) -> None:
    """Start each component ``rounds`` times in this process and show the fastest start of each.

    A start is what a real process pays: load the component (the pre-initialized
    one through the generated loader, from its precompiled ``lexicon.cwasm``; the
    raw one from Wasmtime's cache, which its first start fills by compiling, a
    start the best-of drops), instantiate it, and for the raw one run its init.
    """
    engine = make_engine()
    results = {}
    for raw in (False, True):
        best: StartupTimes | None = None
        for _ in range(rounds):
            lexicon = Lexicon.open(raw=raw, engine=engine)
            lexicon.anagrams(words[0])
            if best is None or lexicon.times.total < best.total:
                best = lexicon.times
        assert best is not None
        results[raw] = best
    print()
    print(f"fastest of {rounds} starts:")
    print(f"  pre-initialized: {_describe(results[False])}")
    print(f"  raw:             {_describe(results[True])}")
    speedup = results[True].total / max(results[False].total, 1e-9)
    print(f"  pre-initialization makes start-up {speedup:.1f}x faster")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lexicon", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--raw", action="store_true", help="use the component that builds its index at start-up")
    mode.add_argument(
        "--compile", action="store_true", help="compile lexicon.wasm instead of loading the precompiled lexicon.cwasm"
    )
    mode.add_argument("--compare", action="store_true", help="time start-up of both components")
    parser.add_argument("--rounds", type=int, default=3, help="starts per component with --compare")
    parser.add_argument("words", nargs="+", metavar="WORD")
    args = parser.parse_args(argv)
    if args.compare:
        compare(args.words, args.rounds)
    else:
        lookup(args.words, raw=args.raw, compile=args.compile)


if __name__ == "__main__":
    main()

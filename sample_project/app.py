"""The guest: an anagram index, built by `component-init` and queried by `anagrams`.

Built into a component by componentize-py (the `componentize-py` build hook).
Everything this module needs is imported at top level: after the build, the
standard library is no longer on a filesystem, so a late import would fail.
"""

import sys
import time
from datetime import datetime, timezone

import wit_world

WORDS_FILE = "/data/words.txt"

# word's letters, sorted -> the words spelled with exactly those letters
_index: dict[str, list[str]] = {}
# word, or word minus one letter -> the words it comes from, space-separated (one-edit spelling lookups)
_near: dict[str, str] = {}
_words = 0
_built_at = ""


def _signature(word: str) -> str:
    return "".join(sorted(word.lower()))


def _variants(word: str) -> set[str]:
    """The word and every way of deleting one letter from it (SymSpell's trick for edit distance 1)."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit_apart(a: str, b: str) -> bool:
    """True if one insertion, deletion, substitution or swap of neighbours turns a into b."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :] or (a[i : i + 2] == b[i : i + 2][::-1] and a[i + 2 :] == b[i + 2 :])
    return a[i:] == b[i + 1 :]


class WitWorld(wit_world.WitWorld):
    def component_init(self) -> None:
        global _words, _built_at
        started = time.perf_counter()
        with open(WORDS_FILE, encoding="utf-8") as f:
            words = f.read().split()
        for word in words:
            _index.setdefault(_signature(word), []).append(word)
            for variant in _variants(word):
                _near[variant] = f"{_near[variant]} {word}" if variant in _near else word
        _words = len(words)
        _built_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        elapsed = (time.perf_counter() - started) * 1000
        sizes = f"{len(_index)} anagram classes, {len(_near)} spelling keys"
        print(f"lexicon: indexed {_words} words ({sizes}) in {elapsed:.0f} ms")

    def anagrams(self, word: str) -> list[str]:
        if not _index:
            print("lexicon: the index is empty: component-init has not run", file=sys.stderr)
            return []
        found = [w for w in _index.get(_signature(word), []) if w != word.lower()]
        # Printing at run time proves the snapshot kept stdout usable.
        print(f"lexicon: {len(found)} anagram(s) of {word!r}")
        return found

    def suggest(self, word: str) -> list[str]:
        word = word.lower()
        candidates = {known for variant in _variants(word) for known in _near.get(variant, "").split()}
        found = sorted(w for w in candidates if w != word and _one_edit_apart(w, word))
        print(f"lexicon: {len(found)} word(s) one edit away from {word!r}")
        return found

    def stats(self) -> str:
        return f"{_words} words in {len(_index)} anagram classes, index built {_built_at}"

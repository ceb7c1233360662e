"""Regenerate data/words.txt, the word list the sample component indexes at build time.

The list is the lowercase, ASCII-only 3-7 letter words of Webster's Second
International Dictionary (1934, public domain: the `web2` list that BSD systems
ship as /usr/share/dict/web2), as packaged by `english-words` 2.0.2 (MIT).
The output is sorted, one word per line, so it is byte-identical on every run:

    pip install english-words==2.0.2
    python tools/make_words.py
"""

from __future__ import annotations

from pathlib import Path

from english_words import get_english_words_set

OUTPUT = Path(__file__).resolve().parent.parent / "data" / "words.txt"


def main() -> None:
    words = get_english_words_set(["web2"], lower=True)
    selected = sorted(w for w in words if w.isascii() and w.isalpha() and 3 <= len(w) <= 7)
    OUTPUT.write_text("".join(f"{w}\n" for w in selected), encoding="ascii")
    print(f"wrote {len(selected)} words to {OUTPUT}")


if __name__ == "__main__":
    main()

"""Benchmark guest: a search index built by `component-init` from files under /data.

Everything it needs is imported at the top level: after pre-initialization the
stdlib is no longer on a filesystem, so later imports would fail.
"""

import sys

import wit_world

docs: list[list[str]] = []
titles: list[str] = []
index: dict[str, list[int]] = {}
counts: dict[str, int] = {}
bigrams: dict[tuple[str, str], int] = {}
records: list[dict[str, object]] = []
by_city: dict[str, list[int]] = {}
initialized = False


def _load_corpus(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        for doc_id, line in enumerate(f):
            title, _, body = line.rstrip("\n").partition("\t")
            words = body.split()
            titles.append(title)
            docs.append(words)
            previous = ""
            for word in words:
                counts[word] = counts.get(word, 0) + 1
                postings = index.get(word)
                if postings is None:
                    index[word] = [doc_id]
                elif postings[-1] != doc_id:
                    postings.append(doc_id)
                if previous:
                    pair = (previous, word)
                    bigrams[pair] = bigrams.get(pair, 0) + 1
                previous = word


def _load_records(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split(",")
        for row, line in enumerate(f):
            values = line.rstrip("\n").split(",")
            record: dict[str, object] = dict(zip(header, values))
            record["id"] = int(values[0])
            record["score"] = float(values[3])
            record["tags"] = values[4].split(";")
            records.append(record)
            by_city.setdefault(values[2], []).append(row)


class WitWorld(wit_world.WitWorld):
    def component_init(self) -> None:
        global initialized
        _load_corpus("/data/corpus.txt")
        _load_records("/data/records.csv")
        initialized = True
        print(f"init: indexed {len(docs)} documents, {len(index)} words, {len(records)} records")
        print("init: done", file=sys.stderr)

    def query(self, word: str) -> str:
        print(f"query: {word}")
        postings = index.get(word, [])
        best = max(postings, key=lambda d: (docs[d].count(word), -d), default=-1)
        top = sorted(((n, w) for (a, w), n in bigrams.items() if a == word), reverse=True)[:3]
        city = records[postings[0] % len(records)]["city"] if postings and records else "-"
        return (
            f"{word}: count={counts.get(word, 0)} docs={len(postings)} "
            f"best={titles[best] if best >= 0 else '-'} next={[w for _, w in top]} city={city} "
            f"city-records={len(by_city.get(str(city), []))}"
        )

    def stats(self) -> str:
        return (
            f"initialized={initialized} docs={len(docs)} words={len(index)} "
            f"bigrams={len(bigrams)} records={len(records)} cities={len(by_city)}"
        )

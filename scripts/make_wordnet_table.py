"""Regenerate src/topfive/data/wordnet_imagenet.tsv: the part of WordNet that ImageNet-1k needs.

The table holds every noun synset that is one of the 1000 ImageNet-1k classes or an ancestor of one
(hypernyms and instance hypernyms, up to `entity`), so that topfive can expand a broad label such as
`dog` to the classes below it and measure how far apart two classes are, offline and without nltk.

Source: WordNet 3.0, Princeton University (https://wordnet.princeton.edu/), as shipped by Debian's
`wordnet-base` package in /usr/share/wordnet (data.noun, index.noun). ImageNet wnids are WordNet 3.0
noun offsets ("n" + 8 digits), so no mapping is involved.

Licence: WordNet 3.0 licence (a permissive BSD-style licence): "Permission to use, copy, modify and
distribute this software and database and its documentation for any purpose and without fee or
royalty is hereby granted", provided the copyright notice ("WordNet 3.0 Copyright 2006 by Princeton
University. All rights reserved.") and the disclaimer appear on all copies; see data/README.md.

Columns (tab-separated, one synset per row, sorted by wnid):
  wnid       n + the data.noun offset
  hypernyms  space-separated wnids of the synset's hypernyms and instance hypernyms (@ and @i)
  lemmas     |-separated `lemma#sense`: each word of the synset, with the rank of this synset among
             that word's noun senses in index.noun (1 = the most frequent sense)
  gloss      the definition up to its first ';' (at most 120 characters)

Usage: python scripts/make_wordnet_table.py [/usr/share/wordnet]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HYPERNYM_POINTERS = {"@", "@i"}


def parse_data(path: Path) -> dict[str, tuple[list[str], list[str], str]]:
    """data.noun -> {wnid: (words, hypernym wnids, gloss)}."""
    synsets = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):  # licence header
            continue
        fields, _, gloss = line.partition(" | ")
        parts = fields.split()
        offset, w_cnt = parts[0], int(parts[3], 16)
        words = [parts[4 + 2 * i] for i in range(w_cnt)]
        pos = 4 + 2 * w_cnt
        p_cnt = int(parts[pos])
        hypernyms = []
        for i in range(p_cnt):
            symbol, target, target_pos = parts[pos + 1 + 4 * i : pos + 4 + 4 * i]
            if symbol in HYPERNYM_POINTERS and target_pos == "n":
                hypernyms.append("n" + target)
        short = gloss.strip().split(";")[0].strip()
        synsets["n" + offset] = (words, hypernyms, short[:120])
    return synsets


def parse_index(path: Path) -> dict[str, list[str]]:
    """index.noun -> {lemma (lower case): [wnid of sense 1, sense 2, ...]}."""
    senses = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):
            continue
        parts = line.split()
        lemma, synset_cnt, p_cnt = parts[0], int(parts[2]), int(parts[3])
        offsets = parts[4 + p_cnt + 2 :]
        assert len(offsets) == synset_cnt, line
        senses[lemma] = ["n" + o for o in offsets]
    return senses


def main() -> None:
    wordnet = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet")
    synsets = parse_data(wordnet / "data.noun")
    senses = parse_index(wordnet / "index.noun")
    classes = [line.split("\t")[1] for line in (ROOT / "src/topfive/data/imagenet_classes.tsv").read_text().splitlines()[1:]]
    assert len(classes) == 1000 and all(w in synsets for w in classes), "a class wnid is not in WordNet 3.0"

    keep, todo = set(), list(classes)
    while todo:
        wnid = todo.pop()
        if wnid not in keep:
            keep.add(wnid)
            todo.extend(synsets[wnid][1])

    out = ROOT / "src/topfive/data/wordnet_imagenet.tsv"
    with out.open("w", encoding="utf-8") as f:
        f.write("wnid\thypernyms\tlemmas\tgloss\n")
        for wnid in sorted(keep):
            words, hypernyms, gloss = synsets[wnid]
            lemmas = []
            for word in words:
                word = word.split("(")[0]  # drop adjective markers such as "(a)"; none expected in nouns
                rank = senses[word.lower()].index(wnid) + 1
                lemmas.append(f"{word}#{rank}")
            f.write(f"{wnid}\t{' '.join(hypernyms)}\t{'|'.join(lemmas)}\t{gloss}\n")
    print(f"wrote {out}: {len(keep)} synsets ({len(classes)} classes and their ancestors)")


if __name__ == "__main__":
    main()

"""Labels -> sets of ImageNet-1k classes, and WordNet distances between classes.

A label may be an ImageNet-1k index (`339`), a wnid (`n02389026`), the name of a class (its
torchvision name or any WordNet lemma of its synset: `sorrel`, `beach wagon`, `station wagon`), or a
broader WordNet concept, which stands for every ImageNet-1k class below it (`dog` -> 118 classes,
`domestic cat` -> 281..285, `horse` -> {339 sorrel}: ImageNet-1k has no plain horse class).

A word that names several classes (`crane`: the bird and the machine) is ambiguous and an error; for
a broader word the most frequent WordNet noun sense that has ImageNet-1k classes below it is taken
(`explain` shows the senses passed over). The WordNet part comes from a compact table of the 1860
synsets that are classes or their ancestors (data/wordnet_imagenet.tsv, WordNet 3.0; see
scripts/make_wordnet_table.py), so nothing here needs nltk or a network.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from topfive.imagenet import by_wnid, classes


class LabelError(ValueError):
    """A label that names no class set; the message lists what it could have meant."""

    def __init__(self, label: str, message: str, choices: list[str] = ()):
        super().__init__(message)
        self.label = label
        self.choices = list(choices)


class UnknownLabel(LabelError):
    pass


class AmbiguousLabel(LabelError):
    pass


@dataclass(frozen=True)
class Synset:
    wnid: str
    hypernyms: tuple[str, ...]
    lemmas: tuple[tuple[str, int], ...]  # (word, rank of this synset among the word's noun senses)
    gloss: str

    @property
    def words(self) -> list[str]:
        return [w.replace("_", " ") for w, _ in self.lemmas]


@dataclass(frozen=True)
class LabelSet:
    """What a label stands for: the accepted ImageNet-1k indices and how they were found."""

    label: str
    indices: frozenset[int]
    how: str  # "index", "wnid", "class name", "wordnet"
    synset: str | None = None  # wnid of the concept, when the label went through WordNet
    note: str = ""
    other_senses: tuple[str, ...] = field(default=())  # wnids of senses passed over


def _norm(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text.strip().lower())


@lru_cache(maxsize=1)
def synsets() -> dict[str, Synset]:
    text = resources.files("topfive").joinpath("data/wordnet_imagenet.tsv").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines()[1:]:
        wnid, hypernyms, lemmas, gloss = line.split("\t")
        pairs = tuple((w, int(r)) for w, _, r in (item.rpartition("#") for item in lemmas.split("|")))
        table[wnid] = Synset(wnid, tuple(hypernyms.split()), pairs, gloss)
    assert all(c.wnid in table for c in classes()), "wordnet_imagenet.tsv does not cover the 1000 classes"
    return table


@lru_cache(maxsize=1)
def _children() -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for s in synsets().values():
        for h in s.hypernyms:
            children.setdefault(h, []).append(s.wnid)
    return children


@lru_cache(maxsize=None)
def descendants(wnid: str) -> frozenset[int]:
    """ImageNet-1k indices of `wnid` itself (if a class) and of every class below it."""
    found, seen, todo = set(), set(), [wnid]
    table = by_wnid()
    while todo:
        w = todo.pop()
        if w in seen:
            continue
        seen.add(w)
        if w in table:
            found.add(table[w].index)
        todo.extend(_children().get(w, ()))
    return frozenset(found)


@lru_cache(maxsize=1)
def _class_words() -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """(primary, secondary): normalised word -> the classes it names. Primary words are a class's
    torchvision name and its synset's first lemma (`crane` for both the bird and the machine);
    secondary words are its other lemmas (`harp` for the harmonica, whose headword is harmonica)."""
    primary: dict[str, set[int]] = {}
    secondary: dict[str, set[int]] = {}
    table = synsets()
    for c in classes():
        words = table[c.wnid].words
        for word in (c.name, words[0]):
            primary.setdefault(_norm(word), set()).add(c.index)
        for word in words[1:]:
            secondary.setdefault(_norm(word), set()).add(c.index)
    return primary, secondary


def _named_classes(word: str) -> set[int]:
    primary, secondary = _class_words()
    return primary.get(word) or secondary.get(word) or set()


@lru_cache(maxsize=1)
def _senses() -> dict[str, list[tuple[int, str]]]:
    """Normalised lemma -> [(sense rank, wnid)] over the synsets in the table, most frequent first."""
    senses: dict[str, list[tuple[int, str]]] = {}
    for s in synsets().values():
        for word, rank in s.lemmas:
            senses.setdefault(_norm(word), []).append((rank, s.wnid))
    for v in senses.values():
        v.sort()
    return senses


# WordNet's own detachment rules for noun plurals (morphy), so that a folder named `horses` works.
_DETACH = [("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y"), ("s", "")]


def _base_forms(word: str) -> list[str]:
    return [word[: -len(suffix)] + ending for suffix, ending in _DETACH if word.endswith(suffix) and len(word) > len(suffix)]


def describe_class(index: int) -> str:
    c = classes()[index]
    return f"{c.index} {c.name} ({c.wnid})"


def _suggestions(label: str) -> list[str]:
    primary, secondary = _class_words()
    vocabulary = set(primary) | set(secondary) | set(_senses())
    return difflib.get_close_matches(_norm(label), sorted(vocabulary), n=6, cutoff=0.7)


def resolve_label(label: str) -> LabelSet:
    """The set of ImageNet-1k classes a label stands for; raises UnknownLabel or AmbiguousLabel."""
    text = label.strip()
    key = _norm(text)
    if re.fullmatch(r"\d+", text):
        i = int(text)
        if i < 1000:
            return LabelSet(label, frozenset({i}), "index")
        raise UnknownLabel(label, f"label {label!r}: ImageNet-1k indices are 0..999")
    if re.fullmatch(r"n\d{8}", key):
        if key in by_wnid():
            return LabelSet(label, frozenset({by_wnid()[key].index}), "wnid", synset=key)
        if key in synsets():
            return LabelSet(label, descendants(key), "wordnet", synset=key)
        raise UnknownLabel(label, f"label {label!r}: {key} is neither an ImageNet-1k class nor above one in WordNet")

    for form, note in [(key, "")] + [(b, f"read as {b!r} (WordNet base form)") for b in _base_forms(key)]:
        named = _named_classes(form)
        if named and len(named) > 1:
            choices = [f"{i} {classes()[i].wnid} {classes()[i].name}: {synsets()[classes()[i].wnid].gloss}" for i in sorted(named)]
            raise AmbiguousLabel(
                label,
                f"label {label!r} names {len(named)} ImageNet-1k classes; use the wnid or index of the one you mean:\n  "
                + "\n  ".join(choices),
                [classes()[i].wnid for i in sorted(named)],
            )
        if named:
            (i,) = named
            return LabelSet(label, frozenset(named), "class name", synset=classes()[i].wnid, note=note)
        senses = _senses().get(form)
        if senses:
            _, wnid = senses[0]
            others = tuple(w for _, w in senses[1:])
            return LabelSet(label, descendants(wnid), "wordnet", synset=wnid, note=note, other_senses=others)

    close = _suggestions(label)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise UnknownLabel(
        label,
        f"label {label!r} is not an ImageNet-1k class, index or wnid, nor a WordNet noun with ImageNet-1k classes below it{hint}",
        close,
    )


def resolve_labels(labels: list[str]) -> dict[str, LabelSet]:
    """Resolve every label; raise one LabelError naming all the bad ones (before any model runs)."""
    resolved, errors = {}, []
    for label in dict.fromkeys(labels):
        try:
            resolved[label] = resolve_label(label)
        except LabelError as e:
            errors.append(e)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise LabelError(", ".join(e.label for e in errors), f"{len(errors)} labels cannot be used:\n" + "\n".join(str(e) for e in errors))
    return resolved


def explain(label: str) -> str:
    """Human-readable account of what a label expands to (for `topfive labels explain`)."""
    s = resolve_label(label)
    table = synsets()
    lines = []
    head = f"{label!r} -> {len(s.indices)} ImageNet-1k class{'es' if len(s.indices) != 1 else ''}"
    if s.synset and s.how == "wordnet":
        syn = table[s.synset]
        head += f" below WordNet {s.synset} ({', '.join(syn.words)}: {syn.gloss})"
    else:
        head += f" (by {s.how})"
    lines.append(head)
    if s.note:
        lines.append(f"  {s.note}")
    for i in sorted(s.indices):
        lines.append(f"  {describe_class(i)}")
    for w in s.other_senses:
        other = table[w]
        lines.append(
            f"  not taken: less frequent sense {w} ({', '.join(other.words)}: {other.gloss}) "
            f"-> {len(descendants(w))} classes; pass the wnid to use it"
        )
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=None)
def _up_distances(wnid: str) -> dict[str, int]:
    """Every ancestor of `wnid` (and itself) -> the fewest hypernym steps up to it."""
    table = synsets()
    dist = {wnid: 0}
    queue = deque([wnid])
    while queue:
        w = queue.popleft()
        for h in table[w].hypernyms:
            if h not in dist:
                dist[h] = dist[w] + 1
                queue.append(h)
    return dist


def lca_height(predicted: int, true: int) -> int:
    """Mistake severity: hypernym steps from the true class up to the lowest ancestor it shares
    with the predicted class (the height of their lowest common ancestor, as in Bertinetto et al.,
    "Making Better Mistakes", CVPR 2020). 0 when equal; sorrel->ox meet at ungulate (4), while
    sorrel->Great Dane meet only at placental mammal (5): the ox is the better mistake."""
    up_true = _up_distances(classes()[true].wnid)
    up_pred = _up_distances(classes()[predicted].wnid)
    return min(up_true[w] for w in up_true.keys() & up_pred.keys())


def distance_to_set(index: int, accepted) -> int:
    """Severity of predicting class `index` for an image whose accepted classes are `accepted`:
    the LCA height to the nearest accepted class."""
    return min(lca_height(index, j) for j in accepted)

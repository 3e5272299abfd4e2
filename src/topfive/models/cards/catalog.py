"""Finding cards: the ones shipped in the package (by short name), the ones in a folder, and the
card of a path the user names (the card itself, or the model file beside its card).

The package ships the cards (data/cards), never the model files, so that a card model resolves by
its short name (`mobilenet_v2_1.0_224_quant`) and its files are looked for or fetched on first use.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from topfive.files import DATA_DIR
from topfive.models.cards.entry import CardEntry
from topfive.models.cards.schema import CARD_SUFFIX, MODEL_SUFFIXES, Card, CardError, load_card
from topfive.models.entry import UnknownModel

BUILTIN_DIR = DATA_DIR / "cards"


@lru_cache(maxsize=1)
def builtin_cards() -> dict[str, Card]:
    """The cards shipped in the package, by short name (the model file without its suffix)."""
    cards = [load_card(p, builtin=True) for p in sorted(BUILTIN_DIR.glob(f"*{CARD_SUFFIX}"))]
    return {c.name: c for c in cards}


def builtin_card(name: str) -> Card | None:
    """The shipped card named by its short name, its model file's name or its own file name."""
    for card in builtin_cards().values():
        if name in (card.name, card.model.file, card.model.file + CARD_SUFFIX):
            return card
    return None


def builtin_entries() -> list[CardEntry]:
    return [CardEntry(card) for card in builtin_cards().values()]


def cards_in(folder: str | os.PathLike) -> list[Card]:
    """Every card in a folder; a broken card raises its CardError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CardError(folder, None, "not a folder")
    return [
        load_card(p)
        for p in sorted(folder.glob(f"*{CARD_SUFFIX}"))
        if p.name.endswith(tuple(s + CARD_SUFFIX for s in MODEL_SUFFIXES))
    ]


def is_card_path(name: str) -> bool:
    """Whether a model name is meant as a path: it ends in a card or model-file suffix, contains a
    path separator, or is an existing file. A folder named like a model (`./resnet50`) is not one:
    that name stays the model's."""
    separators = {"/", os.sep, os.altsep} - {None}
    return (
        name.endswith((CARD_SUFFIX,) + MODEL_SUFFIXES)
        or any(s in name for s in separators)
        or Path(name).expanduser().is_file()
    )


def card_entry(name: str | os.PathLike) -> CardEntry:
    """A card path, a model file next to its card (`<file>.json`), or a shipped card's short name."""
    path = Path(name).expanduser()
    if path.suffix in MODEL_SUFFIXES and path.is_file():
        beside = path.with_name(path.name + CARD_SUFFIX)
        if not beside.is_file():
            schema = "see the card schema in topfive.models.cards.schema"
            raise CardError(beside, None, f"no model card beside {path}; write one ({schema})")
        return CardEntry(load_card(beside))
    if path.is_file():
        return CardEntry(load_card(path))
    builtin = builtin_card(str(name))
    if builtin is not None:
        return CardEntry(builtin)
    if is_card_path(str(name)):
        raise CardError(path, None, "no such file")
    raise UnknownModel(f"unknown model {str(name)!r}; `topfive models` lists them")

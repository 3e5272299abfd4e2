"""Model cards: ONNX, TFLite and OpenVINO IR classifiers described by a JSON file beside the model.

    schema   the card format (its docstring), `Card`/`FileRef`, `load_card`, `CardError`
    fetch    the model files: found, verified by sha256, downloaded or mirrored; `ModelFileError`
    entry    `CardEntry`, a card as a model entry
    catalog  the cards shipped in the package, the cards in a folder, a card from a user's path
"""

from topfive.models.cards.catalog import (
    BUILTIN_DIR,
    builtin_card,
    builtin_cards,
    builtin_entries,
    card_entry,
    cards_in,
    is_card_path,
)
from topfive.models.cards.entry import CardEntry
from topfive.models.cards.fetch import ModelFileError, fetch_file, find_file, mirror, models_cache, models_dir, verify
from topfive.models.cards.schema import (
    CARD_SUFFIX,
    FORMATS,
    MODEL_SUFFIXES,
    Card,
    CardError,
    FileRef,
    load_card,
    parse_card,
)

__all__ = [
    "BUILTIN_DIR",
    "CARD_SUFFIX",
    "FORMATS",
    "MODEL_SUFFIXES",
    "Card",
    "CardEntry",
    "CardError",
    "FileRef",
    "ModelFileError",
    "builtin_card",
    "builtin_cards",
    "builtin_entries",
    "card_entry",
    "cards_in",
    "fetch_file",
    "find_file",
    "is_card_path",
    "load_card",
    "mirror",
    "models_cache",
    "models_dir",
    "parse_card",
    "verify",
]

"""What a distributed run reads: a folder, a glob, a CSV or a manifest -> Inputs, in the local path's order.

The order is the local path's (find_images for folders and files, the set's order for a CSV or
manifest), so that the model sees the same batches as `topfive classify` / `evaluate` without the
engine and gives the same answers to the last bit; shards are fixed slices of this list.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass

from topfive.decode.images import ImageUnreadable, find_images
from topfive.eval.datasets import Dataset, Item, load_dataset

GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Input:
    id: str  # its name in the result rows: the path as given (classify), the set's file name (evaluate)
    path: str | None  # the file to read; None when it could not be had
    problem: tuple[str, str] | None = None  # (error, reason) when it cannot be read: a Failure without decoding
    item: Item | None = None  # evaluate's labelled photo

    def digest_text(self) -> str:
        return json.dumps([self.id, self.path, self.problem], ensure_ascii=True)


def digest(inputs: list[Input], extra: dict) -> str:
    """sha256 of a list of inputs and the settings that decide their answers (a shard's identity)."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, ensure_ascii=True).encode())
    for i in inputs:
        h.update(i.digest_text().encode("ascii") + b"\n")
    return h.hexdigest()


def is_glob(arg: str) -> bool:
    return bool(GLOB_CHARS & set(arg)) and not os.path.lexists(arg)


def is_list_file(arg: str) -> bool:
    return arg.lower().endswith(".csv") and os.path.isfile(arg)


def classify_inputs(args: list[str], recursive: bool = False) -> list[Input]:
    """`topfive classify`'s arguments -> Inputs. Files and folders as the local path expands them
    (find_images); besides them a glob (`'photos/**/*.jpg'`, sorted) and a CSV or manifest (its
    `file` column, read like `evaluate --data`: relative to the CSV's folder, photos never downloaded)."""
    out: list[Input] = []
    plain: list[str] = []

    def flush() -> None:
        problems: dict[str, str] = {}
        for p in find_images(plain, recursive=recursive, problems=problems):
            out.append(Input(p, p, (ImageUnreadable.__name__, problems[p]) if p in problems else None))
        plain.clear()

    for arg in map(str, args):
        if is_glob(arg):
            flush()
            out.extend(Input(p, p) for p in sorted(glob.glob(arg, recursive=True)) if not os.path.isdir(p))
        elif is_list_file(arg):
            flush()
            out.extend(item_input(i, name=i.path or i.file) for i in load_dataset(arg, download=False).items)
        else:
            plain.append(arg)
    flush()
    return out


def item_input(item: Item, name: str | None = None) -> Input:
    return Input(name or item.file, item.path, item.problem, item)


def dataset_inputs(dataset: Dataset) -> list[Input]:
    """evaluate's inputs: the readable photos, in the set's order (the missing ones are failures already)."""
    return [item_input(i) for i in dataset.readable]

"""Model cards: the JSON file that describes an ONNX, TFLite or OpenVINO IR classifier, and its validation.

A card (`<model file>.json`, `card_version: 1`) says what the file is (format, sha256, size, source
URL, licence), how to feed it (input name, layout, dtype; crop rule, interpolation, value range,
channel order) and what comes out (logits or probabilities; 1000 classes, or 1001 with a background
class first). `load_card` validates it with errors that name the card file and the field.

The schema (required unless marked optional):
    card_version 1 | architecture str | licence str | format onnx|tflite|openvino
    file (a name beside the card, ending .onnx/.tflite/.xml) | sha256 (hex) | size_bytes (optional)
    weights_file {file, sha256, size_bytes?, url?}   -- openvino only, and required there
    source {url?, repo?, commit?, path?}             -- optional; url is what gets downloaded
    input {name?, layout NCHW|NHWC, dtype float32|uint8}
    preprocess.crop {rule shorter_side|central_fraction, size, resize (shorter_side),
                     fraction in (0, 1] (central_fraction), interpolation? nearest|bilinear|bicubic}
    preprocess.pixels {channels RGB|BGR, dtype? (= input.dtype), scale? (1/255), mean? (0), std? (1)}
                     -- uint8 input takes 0..255 as it is: scale 1, mean 0, std 1
    output {name?, kind logits|probabilities, num_classes, label_offset? (0)}
                     -- num_classes - label_offset must be 1000
    notes? str
Input name, dtype, layout and size and the output name and size (num_classes) are checked against
the graph itself when a runtime loads it; an output size the graph leaves dynamic, at its first run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from topfive.transforms import INTERPOLATIONS, PreprocessSpec

FORMATS = {"onnx": (".onnx",), "tflite": (".tflite",), "openvino": (".xml",)}
MODEL_SUFFIXES = tuple(s for suffixes in FORMATS.values() for s in suffixes)
CARD_SUFFIX = ".json"


class CardError(ValueError):
    """A model card that cannot be used: the message names the card file and the field."""

    def __init__(self, card: str | os.PathLike, field: str | None, reason: str):
        where = f"model card {card}" + (f": field `{field}`" if field else "")
        super().__init__(f"{where}: {reason}")
        self.card, self.field, self.reason = str(card), field, reason


@dataclass(frozen=True)
class FileRef:
    """One file of a model: its name beside the card, its sha256, size and where to download it."""

    file: str
    sha256: str
    size_bytes: int | None
    url: str | None


@dataclass(frozen=True)
class Card:
    """A validated model card: the model's files and how to feed it and read its output."""

    path: Path  # the card file (for built-in cards: the copy inside the package)
    architecture: str
    format: str
    model: FileRef
    weights: FileRef | None  # an IR's .bin
    source: dict
    licence: str
    input_name: str | None
    layout: str
    dtype: str
    preprocess: PreprocessSpec
    output_name: str | None
    output_kind: str
    num_classes: int
    label_offset: int
    notes: str = ""
    builtin: bool = False

    @property
    def name(self) -> str:
        """The model's short name: its file name without the format suffix."""
        return Path(self.model.file).stem

    @property
    def files(self) -> list[FileRef]:
        return [self.model] + ([self.weights] if self.weights else [])


class _Reader:
    """Typed access to nested card fields; every failure names the card and the dotted field."""

    def __init__(self, card_path, data):
        self.card = card_path
        self.data = data

    def fail(self, field, reason):
        raise CardError(self.card, field, reason)

    def get(self, field, types, required=True, default=None):
        node = self.data
        for part in field.split("."):
            if not isinstance(node, dict):
                self.fail(field, f"expected an object above `{part}`")
            if part not in node or node[part] is None:
                if required:
                    self.fail(field, "missing")
                return default
            node = node[part]
        if types is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, types) or (isinstance(node, bool) and types is not bool):
            wanted = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
            self.fail(field, f"expected {wanted}, got {json.dumps(node)}")
        return node

    def choice(self, field, choices, required=True, default=None):
        value = self.get(field, str, required, default)
        if value is not None and value not in choices:
            self.fail(field, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def positive(self, field, required=True):
        value = self.get(field, int, required)
        if value is not None and value <= 0:
            self.fail(field, f"must be positive, got {value}")
        return value

    def triple(self, field, default):
        value = self.get(field, list, required=False)
        if value is None:
            return default
        if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            self.fail(field, f"expected 3 numbers (one per channel), got {json.dumps(value)}")
        return tuple(float(v) for v in value)

    def file_ref(self, prefix, url_field):
        name = self.get(f"{prefix}file", str)
        if not name or Path(name).name != name:
            self.fail(f"{prefix}file", f"must be a plain file name beside the card, got {name!r}")
        digest = self.get(f"{prefix}sha256", str).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            self.fail(f"{prefix}sha256", f"not a sha256 hex digest: {digest!r}")
        return FileRef(
            name, digest, self.positive(f"{prefix}size_bytes", required=False), self.get(url_field, str, False)
        )


def parse_card(data: dict, card_path: str | os.PathLike, builtin: bool = False) -> Card:
    """The card in `data` (a parsed JSON object) read from `card_path`; a CardError names what is wrong."""
    r = _Reader(card_path, data)
    if not isinstance(data, dict):
        r.fail(None, "not a JSON object")
    version = r.get("card_version", int)
    if version != 1:
        r.fail("card_version", f"unsupported version {version}; this topfive reads version 1")
    fmt = r.choice("format", list(FORMATS))
    model = r.file_ref("", "source.url")
    if not model.file.endswith(FORMATS[fmt]):
        r.fail("file", f"{model.file!r} does not end in {' or '.join(FORMATS[fmt])} as format {fmt!r} files do")
    weights = None
    if fmt == "openvino":
        r.get("weights_file", dict)
        weights = r.file_ref("weights_file.", "weights_file.url")
    elif "weights_file" in data and data["weights_file"] is not None:
        r.fail("weights_file", f"only OpenVINO IR models have a separate weights file, not {fmt}")

    layout = r.choice("input.layout", ["NCHW", "NHWC"])
    dtype = r.choice("input.dtype", ["float32", "uint8"])
    rule = r.choice("preprocess.crop.rule", ["shorter_side", "central_fraction"])
    size = r.positive("preprocess.crop.size")
    resize = fraction = None
    if rule == "shorter_side":
        resize = r.positive("preprocess.crop.resize")
        if resize < size:
            r.fail("preprocess.crop.resize", f"{resize} is smaller than the crop size {size}")
    else:
        fraction = r.get("preprocess.crop.fraction", float)
        if not 0 < fraction <= 1:
            r.fail("preprocess.crop.fraction", f"must be in (0, 1], got {fraction}")
    pixel_dtype = r.choice("preprocess.pixels.dtype", ["float32", "uint8"], required=False, default=dtype)
    if pixel_dtype != dtype:
        r.fail("preprocess.pixels.dtype", f"{pixel_dtype} differs from input.dtype {dtype}")
    scale = r.get("preprocess.pixels.scale", float, required=False, default=1 / 255)
    mean = r.triple("preprocess.pixels.mean", (0.0, 0.0, 0.0))
    std = r.triple("preprocess.pixels.std", (1.0, 1.0, 1.0))
    if scale <= 0:
        r.fail("preprocess.pixels.scale", f"must be positive, got {scale}")
    if any(s == 0 for s in std):
        r.fail("preprocess.pixels.std", "a zero standard deviation")
    if dtype == "uint8" and (scale != 1 or mean != (0, 0, 0) or std != (1, 1, 1)):
        r.fail("preprocess.pixels", "uint8 input takes the 0..255 pixels as they are: scale 1, mean 0, std 1")
    spec = PreprocessSpec(
        size=size,
        rule=rule,
        resize=resize,
        fraction=fraction,
        interpolation=r.choice(
            "preprocess.crop.interpolation", list(INTERPOLATIONS), required=False, default="bilinear"
        ),
        scale=scale,
        mean=mean,
        std=std,
        channels=r.choice("preprocess.pixels.channels", ["RGB", "BGR"]),
        dtype=dtype,
        layout=layout,
    )
    num_classes = r.positive("output.num_classes")
    label_offset = r.get("output.label_offset", int, required=False, default=0)
    if label_offset < 0 or num_classes - label_offset != 1000:
        r.fail(
            "output.num_classes",
            f"{num_classes} classes with label_offset {label_offset} do not leave the 1000 ImageNet-1k classes",
        )
    return Card(
        path=Path(card_path),
        architecture=r.get("architecture", str),
        format=fmt,
        model=model,
        weights=weights,
        source=r.get("source", dict, required=False, default={}),
        licence=r.get("licence", str),
        input_name=r.get("input.name", str, required=False),
        layout=layout,
        dtype=dtype,
        preprocess=spec,
        output_name=r.get("output.name", str, required=False),
        output_kind=r.choice("output.kind", ["logits", "probabilities"]),
        num_classes=num_classes,
        label_offset=label_offset,
        notes=r.get("notes", str, required=False, default=""),
        builtin=builtin,
    )


def load_card(path: str | os.PathLike, builtin: bool = False) -> Card:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CardError(path, None, f"not a readable JSON file ({e})") from e
    return parse_card(data, path, builtin=builtin)

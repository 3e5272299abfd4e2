"""Model cards: ONNX, TFLite and OpenVINO IR classifiers described by a JSON file beside the model.

A card (`<model file>.json`, draft schema `card_version: 1`, see ../shared/models/README.md) says
what the file is (format, sha256, size, source URL, licence), how to feed it (input name, layout,
dtype; crop rule, interpolation, value range, channel order) and what comes out (logits or
probabilities; 1000 classes, or 1001 with a background class first). `load_card` validates it with
errors that name the card file and the field; `card_entry` turns a card into a `zoo.ModelEntry`.

Where the model file comes from, in order: beside the card, the mirror folder (`--models-dir` /
$TOPFIVE_MODELS_DIR), the cache ($TOPFIVE_CACHE or ~/.cache/topfive/models), else a download of the
card's source URL into the cache. Every file is checked against the card's sha256 before use.
The cards of the seven models in ../shared/models ship with the package (data/cards) so they
resolve by short name (`mobilenet_v2_1.0_224_quant`); the model files themselves never do.

The schema as read here (required unless marked optional):
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
On load the card is also checked against the graph: input name, dtype, layout and size; output name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from topfive.files import DATA_DIR
from topfive.transforms import INTERPOLATIONS, PreprocessSpec
from topfive.models.weights import WeightsUnavailable
from topfive.models.zoo import ModelEntry, ModelInfo, UnknownModel

FORMATS = {"onnx": (".onnx",), "tflite": (".tflite",), "openvino": (".xml",)}
MODEL_SUFFIXES = tuple(s for suffixes in FORMATS.values() for s in suffixes)
BUILTIN_DIR = DATA_DIR / "cards"
TFLITE_RUNTIMES = ("openvino", "litert")


class CardError(ValueError):
    """A model card that cannot be used: the message names the card file and the field."""

    def __init__(self, card: str | os.PathLike, field: str | None, reason: str):
        where = f"model card {card}" + (f": field `{field}`" if field else "")
        super().__init__(f"{where}: {reason}")
        self.card, self.field, self.reason = str(card), field, reason


class ModelFileError(CardError, WeightsUnavailable):
    """A model file that is missing or is not the one the card describes (size, sha256). Also a
    WeightsUnavailable, so callers that skip models without weights skip these alike."""


def cache_dir() -> Path:
    return Path(os.environ.get("TOPFIVE_CACHE") or Path.home() / ".cache" / "topfive" / "models")


def models_dir() -> Path | None:
    folder = os.environ.get("TOPFIVE_MODELS_DIR")
    return Path(folder) if folder else None


@dataclass(frozen=True)
class FileRef:
    """One file of a model: its name beside the card, its sha256, size and where to download it."""

    file: str
    sha256: str
    size_bytes: int | None
    url: str | None


@dataclass(frozen=True)
class Card:
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


# --- validation --------------------------------------------------------------------------------


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


# --- files: find, verify, download ---------------------------------------------------------------

_verified: dict[tuple, bool] = {}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, ref: FileRef, card: Card) -> None:
    """Raise ModelFileError unless `path` is the file the card describes (size, then sha256)."""
    field = "weights_file.sha256" if ref is card.weights else "sha256"
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, ref.sha256)
    if _verified.get(key):
        return
    if ref.size_bytes is not None and stat.st_size != ref.size_bytes:
        raise ModelFileError(
            card.path,
            field.replace("sha256", "size_bytes"),
            f"{path} has {stat.st_size} bytes, the card says {ref.size_bytes}",
        )
    digest = sha256_of(path)
    if digest != ref.sha256:
        raise ModelFileError(card.path, field, f"{path} has sha256 {digest}, the card says {ref.sha256}")
    _verified[key] = True


def candidate_folders(card: Card) -> list[Path]:
    folders = [] if card.builtin else [card.path.parent]
    if models_dir():
        folders.append(models_dir())
    folders.append(cache_dir())
    return folders


def find_file(ref: FileRef, card: Card) -> Path | None:
    """The first file by that name in the card's folders that matches the card; a mismatch raises."""
    for folder in candidate_folders(card):
        path = folder / ref.file
        if path.is_file():
            verify(path, ref, card)
            return path
    return None


def download(ref: FileRef, card: Card) -> Path:
    """Fetch `ref.url` into the cache, check its sha256, and move it into place."""
    target = cache_dir() / ref.file
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{ref.file}.")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(ref.url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        verify(Path(tmp), ref, card)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def fetch_file(ref: FileRef, card: Card) -> Path:
    path = find_file(ref, card)
    if path is not None:
        return path
    places = ", ".join(str(f) for f in candidate_folders(card))
    how_to = f"put {ref.file} (sha256 {ref.sha256}) in one of: {places}, or pass --models-dir DIR"
    if not ref.url:
        raise ModelFileError(card.path, "file", f"{ref.file} not found and the card has no URL; {how_to}")
    if os.environ.get("TOPFIVE_OFFLINE"):
        raise ModelFileError(card.path, "file", f"{ref.file} not found (TOPFIVE_OFFLINE is set, no download); {how_to}")
    try:
        return download(ref, card)
    except ModelFileError:
        raise
    except OSError as e:  # URLError is an OSError
        reason = getattr(e, "reason", e)
        raise ModelFileError(
            card.path, "file", f"{ref.file} not found and the download of {ref.url} failed ({reason}); {how_to}"
        ) from e


def mirror(card: Card, folder: str | os.PathLike | None = None) -> list[Path]:
    """Make the card's files present and verified in `folder` (default: the cache); returns their paths."""
    target = Path(folder) if folder else cache_dir()
    paths = []
    for ref in card.files:
        source = fetch_file(ref, card)
        dest = target / ref.file
        if source.resolve() != dest.resolve():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            verify(dest, ref, card)
        paths.append(dest)
    return paths


# --- graph statistics ------------------------------------------------------------------------------


def graph_stats(card: Card, path: Path) -> tuple[int | None, float | None, str]:
    """(params, GMACs per image, how they were counted); None where the graph cannot be read here.
    Counting reads the whole graph (about a second), so results are kept in the cache by sha256."""
    from topfive.models import graphstats

    memo_file = cache_dir() / "graphstats.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if card.model.sha256 in memo:
        return tuple(memo[card.model.sha256])
    try:
        if card.format == "onnx":
            params, macs = graphstats.onnx_stats(path)
            how = "counted from the ONNX graph (conv/matmul weights and biases; MACs at batch 1)"
        else:
            params, macs = graphstats.openvino_stats(path)
            how = "counted from the graph as OpenVINO reads it (conv/matmul weights and biases; MACs at batch 1)"
    except ImportError:
        return None, None, "unknown (the package that reads this graph is not installed)"
    except Exception as e:  # a graph these counters do not understand: unknown, not guessed
        return None, None, f"unknown (could not count: {type(e).__name__}: {e})"
    memo[card.model.sha256] = (params, macs / 1e9, how)
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        memo_file.write_text(json.dumps(memo, indent=1))
    except OSError:
        pass  # a read-only cache only costs the recount
    return params, macs / 1e9, how


# --- the zoo entry ---------------------------------------------------------------------------------


class CardEntry(ModelEntry):
    """A model described by a card, run by ONNX Runtime (ONNX), LiteRT (TFLite) or OpenVINO (IR)."""

    def __init__(self, card: Card):
        self.card = card

    @cached_property
    def info(self) -> ModelInfo:
        card = self.card
        params = gmacs = None
        counted = "unknown (model file not here)"
        if self.weights_status() == "local":
            params, gmacs, counted = graph_stats(card, find_file(card.model, card))
        size = sum(ref.size_bytes or 0 for ref in card.files)
        return ModelInfo(
            name=card.name,
            family=card.format,
            architecture=card.architecture,
            params=params,
            gmacs=gmacs,
            acc1=None,
            acc5=None,
            weights_file=card.model.file,
            weights_mb=size / 2**20 if size else None,
            weights_url=card.model.url,
            preprocess=card.preprocess,
            published_source=f"model card {card.path}",
            extra={
                "card": str(card.path),
                "licence": card.licence,
                "source": card.source,
                "runtime": default_runtime(card.format),
                "params_method": counted,
                "output": f"{card.output_kind}, {card.num_classes} classes, label offset {card.label_offset}",
            },
        )

    def weights_status(self) -> str:
        try:
            return "local" if all(find_file(ref, self.card) for ref in self.card.files) else "download"
        except ModelFileError:
            return "download"

    def build(self, pretrained=True, weights_file=None):
        raise TypeError(f"{self.card.name} is a {self.card.format} model; it has no PyTorch module (use load_backend)")

    def model_path(self) -> Path:
        return fetch_file(self.card.model, self.card)

    def load_backend(self, device="cpu", weights_file=None, pretrained=True, threads=None, runtime=None):
        """The runtime backend. `pretrained` has no effect: a card's graph carries its weights."""
        if weights_file:
            raise ValueError(f"{self.card.name}: a model card names its own files; --weights-file does not apply")
        from topfive.runtime import runtimes

        card = self.card
        runtime = runtime or default_runtime(card.format)
        path = self.model_path()
        common = dict(output_kind=card.output_kind, label_offset=card.label_offset, device=device, threads=threads)
        if card.format == "onnx":
            backend = runtimes.OnnxRuntimeBackend(path, **common)
        elif card.format == "openvino":
            backend = runtimes.OpenVinoBackend(path, weights_path=fetch_file(card.weights, card), **common)
        elif runtime == "litert":
            backend = runtimes.LiteRtBackend(path, **common)
        else:
            backend = runtimes.OpenVinoBackend(path, **common)
        check_graph(card, backend)
        return backend


def check_graph(card: Card, backend) -> None:
    """The card against the graph it describes: input name, dtype, layout and size; output name."""
    if hasattr(backend, "session"):  # ONNX Runtime
        first = backend.session.get_inputs()[0]
        name, shape = first.name, [d if isinstance(d, int) else -1 for d in first.shape]
        dtype = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}.get(first.type, first.type)
        outputs = [o.name for o in backend.session.get_outputs()][:1]
    else:
        name, shape, dtype, outputs = backend.input_name, backend.input_shape, backend.input_dtype, backend.output_names
    if card.input_name and card.input_name != name:
        raise CardError(card.path, "input.name", f"{card.input_name!r}, but the model's input is {name!r}")
    if dtype != card.dtype:
        raise CardError(card.path, "input.dtype", f"{card.dtype}, but the model's input is {dtype}")
    size = card.preprocess.size
    expected = [size, size] if card.layout == "NCHW" else [size, size, 3]
    got = shape[2:] if card.layout == "NCHW" else shape[1:]
    if (
        len(shape) != 4
        or (card.layout == "NCHW" and shape[1] not in (3, -1))
        or any(g not in (e, -1) for g, e in zip(got, expected))
    ):
        raise CardError(
            card.path, "input.layout", f"{card.layout} {size}x{size}, but the model's input shape is {shape}"
        )
    if card.output_name and card.output_name not in outputs:
        raise CardError(card.path, "output.name", f"{card.output_name!r}, but the model's output is {outputs}")


def default_runtime(fmt: str) -> str:
    """ONNX -> ONNX Runtime; IR -> OpenVINO; TFLite -> LiteRT, or OpenVINO with $TOPFIVE_TFLITE_RUNTIME=openvino.

    LiteRT for TFLite because it is the runtime these files are deployed with: its integer kernels
    are the reference (OpenVINO's quantized outputs differ by up to 26/256 on single classes; top-1
    and top-5 on ../shared/eval agree within a point either way), it reports each tensor's own
    scale and zero point, and it loads in under 0.1 s where OpenVINO compiles for 1-5 s. OpenVINO
    ran the three larger ones 1.1-1.4x faster per image on one x86 thread, LiteRT the two smaller
    ones faster (benchmarks/cards_tflite_runtimes.py); OpenVINO stays one variable away.
    """
    if fmt == "onnx":
        return "onnxruntime"
    if fmt == "openvino":
        return "openvino"
    choice = os.environ.get("TOPFIVE_TFLITE_RUNTIME") or "litert"
    if choice not in TFLITE_RUNTIMES:
        raise ValueError(f"TOPFIVE_TFLITE_RUNTIME={choice!r}: use one of {', '.join(TFLITE_RUNTIMES)}")
    return choice


# --- resolution --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def builtin_cards() -> dict[str, Card]:
    """The cards shipped in the package, by short name (the model file without its suffix)."""
    cards = [load_card(p, builtin=True) for p in sorted(BUILTIN_DIR.glob("*.json"))]
    return {c.name: c for c in cards}


def builtin_card(name: str) -> Card | None:
    cards = builtin_cards()
    for card in cards.values():
        if name in (card.name, card.model.file, card.model.file + ".json"):
            return card
    return None


def cards_in(folder: str | os.PathLike) -> list[Card]:
    """Every card in a folder; a broken card raises its CardError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CardError(folder, None, "not a folder")
    return [
        load_card(p)
        for p in sorted(folder.glob("*.json"))
        if p.name.endswith(tuple(s + ".json" for s in MODEL_SUFFIXES))
    ]


def card_entry(name: str | os.PathLike) -> CardEntry:
    """A card path, a model file next to its card (`<file>.json`), or a built-in card's short name."""
    path = Path(name).expanduser()
    if path.suffix == ".json" and path.exists():
        return CardEntry(load_card(path))
    if path.suffix in MODEL_SUFFIXES and path.exists():
        beside = path.with_name(path.name + ".json")
        if not beside.is_file():
            raise CardError(
                beside, None, f"no model card beside {path}; write one (see the card schema in topfive.models.cards)"
            )
        return CardEntry(load_card(beside))
    builtin = builtin_card(str(name))
    if builtin is not None:
        return CardEntry(builtin)
    if path.suffix == ".json" or path.suffix in MODEL_SUFFIXES or os.sep in str(name):
        raise CardError(path, None, "no such file")
    raise UnknownModel(f"unknown model {str(name)!r}; `topfive models` lists them")


def builtin_entries() -> list[CardEntry]:
    return [CardEntry(card) for card in builtin_cards().values()]

"""Export zoo models to ONNX (fp32) and quantise them to int8, cached on disk.

The cache lives in `$TOPFIVE_CACHE/onnx` (default `~/.cache/topfive/onnx`). A file's name carries
what decides its content: model name, input size, weights tag, torch version (and, for int8, a
fingerprint of the calibration photos), so a stale file is never picked up by mistake. Files are
written to a temporary name and renamed, so an interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import torch

from topfive.transforms import PreprocessSpec


def cache_dir() -> Path:
    base = os.environ.get("TOPFIVE_CACHE") or Path.home() / ".cache" / "topfive"
    path = Path(base) / "onnx"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def file_tag(path: str | os.PathLike) -> str:
    """A short content hash of a weights file, so a different file gets a different export."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha" + h.hexdigest()[:12]


# Bump when the export itself changes (opset, graph preparation), so old cache files are not reused.
EXPORT_FORMAT = 1


def onnx_path(name: str, size: int, weights_tag: str = "published") -> Path:
    torch_version = torch.__version__.split("+")[0]
    return cache_dir() / (
        f"{_slug(name)}-{size}px-{_slug(weights_tag)}-torch{torch_version}-f{EXPORT_FORMAT}.onnx"
    )


def prepare_for_export(model: torch.nn.Module) -> torch.nn.Module:
    """Make a model traceable: swap efficientnet_lite_pytorch's MemoryEfficientSwish (a custom
    autograd Function that the exporter and torch.compile cannot see through) for plain Swish.

    Only the modules that are MemoryEfficientSwish are swapped. The package's own
    `set_swish(memory_efficient=False)` must not be used: it sets *every* activation to Swish,
    and EfficientNet-Lite's activations are ReLU6, so it silently turns Lite into another model.
    """
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if type(child).__name__ == "MemoryEfficientSwish":
                from efficientnet_lite_pytorch.utils import Swish

                setattr(parent, child_name, Swish())
    return model.eval()


def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def export_onnx(
    model: torch.nn.Module, name: str, size: int, weights_tag: str = "published", opset: int = 17
) -> Path:
    """The ONNX file for `model` (N x 3 x size x size float input, dynamic N), exported once."""
    path = onnx_path(name, size, weights_tag)
    if path.is_file():
        return path
    model = prepare_for_export(model).cpu()
    tmp = _atomic_target(path)
    with warnings.catch_warnings():
        # The TorchScript-based exporter needs no extra package (the dynamo one needs onnxscript)
        # and handles every zoo CNN; torch marks it deprecated.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
        )
    os.replace(tmp, path)
    return path


# --- int8 ------------------------------------------------------------------------------------


def calibration_files(source: str | os.PathLike | Sequence, count: int = 64) -> list[str]:
    """`count` photos spread evenly over a folder (recursively) or a list of files."""
    from topfive.decode.images import find_images

    files = (
        find_images([source], recursive=True)
        if isinstance(source, (str, os.PathLike))
        else [str(f) for f in source]
    )
    if not files:
        raise ValueError(f"no calibration photos found in {source}")
    step = max(1, len(files) // count)
    return files[::step][:count]


def _fingerprint(files: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        h.update(f"{Path(f).name}:{st.st_size}\n".encode())
    return h.hexdigest()[:10]


class PhotoCalibrationReader:
    """Feeds ONNX Runtime's calibrator real photos, decoded and preprocessed by the core path."""

    # One photo per batch: ORT's histogram calibrators stack per-batch outputs and fail on a short batch.
    def __init__(self, files: list[str], spec: PreprocessSpec, input_name: str = "input", batch: int = 1):
        self.files, self.spec, self.input_name, self.batch = files, spec, input_name, batch
        self.position = 0

    def get_next(self):
        from topfive.decode.images import ImageError, load_image
        from topfive.transforms import preprocess, stack

        tensors = []
        while len(tensors) < self.batch and self.position < len(self.files):
            path = self.files[self.position]
            self.position += 1
            try:
                tensors.append(preprocess(load_image(path), self.spec))
            except ImageError:
                continue  # a broken calibration photo is skipped; the others carry the ranges
        if not tensors:
            return None
        return {self.input_name: stack(tensors, self.spec).numpy()}

    def rewind(self):
        self.position = 0


# The int8 recipe, chosen by measurement on EfficientNet-Lite0 (`benchmarks/int8_recipes.py`,
# docs/performance.md): QDQ, uint8 activations with int8 per-channel weights, `reduce_range` (7-bit
# weights: on AVX2 CPUs without VNNI the u8 x s8 kernels saturate 16-bit sums, which costs ~12
# points of top-1 agreement without it) and percentile (99.999) activation ranges.
INT8_RECIPE = "qdq-pc-rr-p99999"


def int8_recipe(**overrides) -> dict:
    """`quantize_static` keyword arguments of the shipped recipe; benchmarks override single keys."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    recipe = dict(
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"CalibPercentile": 99.999},
    )
    recipe.update(overrides)
    return recipe


def preprocess_for_quantization(fp32_path: Path, out_path: Path) -> None:
    """ONNX Runtime's recommended pre-pass (shape inference, graph clean-up) before quantisation."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=True)


def quantize_onnx(pre_path: Path, out_path: Path, reader, recipe: dict | None = None, calibration_cache=None) -> None:
    """Quantise a pre-processed ONNX file with `recipe` (default: the shipped one).

    `calibration_cache`: a JSON file where ONNX Runtime keeps the activation ranges, so variants of
    a recipe that share the calibration do not run it again."""
    from onnxruntime.quantization import quantize_static

    with contextlib.redirect_stdout(io.StringIO()):  # the percentile calibrator prints progress
        quantize_static(
            str(pre_path),
            str(out_path),
            reader,
            calibration_cache_path=None if calibration_cache is None else str(calibration_cache),
            **(recipe or int8_recipe()),
        )


def quantize_int8(
    fp32_path: Path, spec: PreprocessSpec, calibration: str | os.PathLike | Sequence, count: int = 64
) -> Path:
    """Static int8 quantisation of an exported model with ONNX Runtime, calibrated on photos."""
    from topfive.runtime.runtimes import require

    require("onnxruntime", "onnx", "int8 quantisation")
    files = calibration_files(calibration, count)
    path = fp32_path.with_name(f"{fp32_path.stem}-int8-{INT8_RECIPE}-cal{len(files)}x{_fingerprint(files)}.onnx")
    if path.is_file():
        return path
    pre = _atomic_target(fp32_path.with_suffix(".pre.onnx"))
    tmp = _atomic_target(path)
    try:
        preprocess_for_quantization(fp32_path, pre)
        quantize_onnx(pre, tmp, PhotoCalibrationReader(files, spec))
        os.replace(tmp, path)
    finally:
        for leftover in (pre, tmp):
            leftover.unlink(missing_ok=True)
    return path

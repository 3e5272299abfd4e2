"""The int8 runtime's model: an ONNX export statically quantised by ONNX Runtime, calibrated on photos.

The quantised file sits beside the fp32 export in the ONNX cache; its name adds the recipe and a
fingerprint of the calibration photos' contents, so other photos (or the same names with other
pixels) give another file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from topfive.files import atomic_path, sha256_file
from topfive.runtime.base import require
from topfive.sampling import spread_evenly
from topfive.transforms import PreprocessSpec

CALIBRATION_PHOTOS = 64

# The int8 recipe, chosen by measurement on EfficientNet-Lite0 (docs/performance.md): QDQ, uint8
# activations with int8 per-channel weights, `reduce_range` (7-bit weights: on AVX2 CPUs without
# VNNI the u8 x s8 kernels saturate 16-bit sums, which costs ~12 points of top-1 agreement
# without it) and percentile (99.999) activation ranges.
INT8_RECIPE = "qdq-pc-rr-p99999"


def calibration_files(source: str | os.PathLike | Sequence, count: int = CALIBRATION_PHOTOS) -> list[str]:
    """`count` photos spread evenly over a folder (recursively) or a list of files."""
    from topfive.decode.images import find_images

    files = (
        find_images([source], recursive=True)
        if isinstance(source, (str, os.PathLike))
        else [str(f) for f in source]
    )
    if not files:
        raise ValueError(f"no calibration photos found in {source}")
    return spread_evenly(files, count)


def calibration_fingerprint(files: list[str]) -> str:
    """A short hash of the photos' contents, in order."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{sha256_file(f)}\n".encode())
    return h.hexdigest()[:10]


class PhotoCalibrationReader:
    """Feeds ONNX Runtime's calibrator real photos, decoded and preprocessed as for prediction."""

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


def int8_recipe(**overrides) -> dict:
    """`quantize_static` keyword arguments of the shipped recipe; experiments override single keys."""
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


def int8_path(fp32_path: Path, files: list[str]) -> Path:
    return fp32_path.with_name(
        f"{fp32_path.stem}-int8-{INT8_RECIPE}-cal{len(files)}x{calibration_fingerprint(files)}.onnx"
    )


def quantize_int8(
    fp32_path: Path, spec: PreprocessSpec, calibration: str | os.PathLike | Sequence, count: int = CALIBRATION_PHOTOS
) -> Path:
    """Static int8 quantisation of an exported model with ONNX Runtime, calibrated on photos (cached)."""
    require("onnxruntime", "onnx", "int8 quantisation")
    files = calibration_files(calibration, count)
    path = int8_path(Path(fp32_path), files)
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch, atomic_path(path) as tmp:
        pre = Path(scratch) / "pre.onnx"  # the pre-pass's output is scratch: only the quantised file stays
        preprocess_for_quantization(Path(fp32_path), pre)
        quantize_onnx(pre, tmp, PhotoCalibrationReader(files, spec))
    return path


def build(request):
    """The "int8" runtime: the zoo model's ONNX export, quantised (cached), in ONNX Runtime."""
    from topfive.runtime.onnxruntime import OnnxRuntime

    if request.calibration is None:
        raise ValueError(
            "the int8 runtime needs calibration photos: a folder of typical images (--calibration DIR, "
            f"{CALIBRATION_PHOTOS} are taken, spread evenly) or a list of photo files"
        )
    require("onnxruntime", "onnx", "the int8 runtime")
    path = quantize_int8(request.onnx_export(), request.entry.info.preprocess, request.calibration)
    return OnnxRuntime(path, name="int8", precision="int8", **request.graph_options())

"""What every command shares: argument types, the error line, the options of commands that run models."""

from __future__ import annotations

import argparse
import sys

DEFAULT_MODEL = "efficientnet_lite0"
MODELS_DIR_HELP = "a folder holding the model files of model cards (sets $TOPFIVE_MODELS_DIR)"


def models_arg(text: str) -> list[str]:
    return [m for m in (part.strip() for part in text.split(",")) if m]


def fail(message: str) -> int:
    print(f"topfive: error: {message}", file=sys.stderr)
    return 2


def sizes_arg(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be positive integers")
    return sizes


def add_speed_options(p) -> None:
    """--backend/--draft/--calibration/--threads, shared by the commands that run models."""
    p.add_argument(
        "--backend", choices=["auto", "eager", "compile", "onnx", "int8"], default="auto",
        help="how a torchvision / EfficientNet-Lite model runs: auto (default: onnx on CPU when onnxruntime "
        "is installed, else eager), eager PyTorch (the reference), torch.compile, ONNX Runtime (exported "
        "once, cached in ~/.cache/topfive/onnx or $TOPFIVE_CACHE), or int8 ONNX Runtime (calibrated on "
        "photos; needs --calibration). Model cards always run on their own runtime.",
    )
    p.add_argument(
        "--calibration", metavar="DIR",
        help="photos to calibrate int8 on (a folder of typical images; 64 are taken, spread evenly)",
    )
    p.add_argument(
        "--draft", action="store_true",
        help="decode large JPEGs at a reduced DCT scale (1/2..1/8, never below twice the side the crop is "
        "taken from): ~4x faster decoding of 12 MP photos, top-1 kept on 99 %% of them (docs/performance.md)",
    )
    p.add_argument("--threads", type=int, help="intra-op threads for the model (default: all cores)")
    p.add_argument(
        "--decode", choices=["pillow", "tensor"], default="pillow",
        help="pillow (default): Pillow decodes and resizes photo by photo, the reference path; tensor: "
        "torchvision decodes each batch (nvjpeg with --device cuda) and resizes it in one step, with "
        "Pillow's resampling; on the CPU the same pixels as pillow, on CUDA nvjpeg's (EfficientNet-Lite0 "
        "kept top-1 on 99.1 %% of the photo set). See docs/performance.md",
    )

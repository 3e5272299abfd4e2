"""What every command shares: argument types, the error line, the options of commands that run models."""

from __future__ import annotations

import argparse
import sys

from topfive.decode import DECODERS
from topfive.runtime.registry import DEFAULT_RUNTIME, DEPRECATED, RUNTIMES

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


class DeprecatedBackend(argparse.Action):
    """`--backend NAME`, the former spelling of `--runtime NAME` (also with the former names eager,
    onnx, tflite): sets the runtime and prints a one-line note on stderr."""

    def __call__(self, parser, namespace, value, option_string=None):
        runtime = DEPRECATED.get(value, value)
        print(f"topfive: --backend is deprecated; use --runtime {runtime}", file=sys.stderr)
        namespace.runtime = runtime


def add_speed_options(p) -> None:
    """--runtime/--calibration/--draft/--threads/--decode, shared by the commands that run models."""
    p.add_argument(
        "--runtime", choices=RUNTIMES, default=DEFAULT_RUNTIME,
        help="what runs the model (default: auto): torch (eager PyTorch), compile (torch.compile), "
        "onnxruntime (ONNX Runtime; zoo models are exported to ONNX once, cached), int8 (ONNX Runtime int8, "
        "needs --calibration), openvino, openvino-bf16, litert (TFLite cards); auto = for a zoo model on the "
        "CPU the fastest fp32 runtime measured here (cached; see `topfive tune`, $TOPFIVE_AUTO_RUNTIME pins "
        "it), else torch, and a card's own format runtime. See the README's Runtimes section.",
    )
    p.add_argument(
        "--backend", action=DeprecatedBackend, choices=[*RUNTIMES, *DEPRECATED], metavar="NAME",
        help="deprecated spelling of --runtime",
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
        "--decode", choices=DECODERS, default="pillow",
        help="pillow (default): Pillow decodes and resizes photo by photo, the reference path; tensor: "
        "torchvision decodes each batch (nvjpeg with --device cuda) and resizes it in one step, with "
        "Pillow's resampling; on the CPU the same pixels as pillow, on CUDA nvjpeg's (EfficientNet-Lite0 "
        "kept top-1 on 99.1 %% of the photo set). See docs/performance.md; dali: NVIDIA DALI decodes, resizes and "
        "normalises each batch (the GPU's JPEG decoder with --device cuda, DALI's CPU operators otherwise; "
        "pip install 'topfive[gpu]'), with DALI's resampling, not Pillow's: see docs/gpu-dali.md",
    )


def runtimes_arg(text: str) -> list[str]:
    """`--runtime A,B` of the commands that measure: the runtime words, each once."""
    from topfive.runtime.axis import parse_runtimes

    for word in (part.strip() for part in text.split(",")):
        if word in DEPRECATED:
            print(f"topfive: runtime {word!r} is deprecated; use {DEPRECATED[word]!r}", file=sys.stderr)
    try:
        return parse_runtimes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


RUNTIMES_HELP = (
    "comma-separated runtimes, every model measured on each and every result row named by (model, runtime); "
    "a model written NAME@RUNTIME runs on that runtime only. Words: " + ", ".join(RUNTIMES)
    + "; auto is what `topfive classify` runs (a card's own runtime; the rows say what it resolved to)"
)

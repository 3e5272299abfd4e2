"""The `topfive` command: parse arguments, call the library, print. Heavy imports happen inside
the command functions, so `topfive --help` answers without loading torch."""

from __future__ import annotations

import argparse
import sys

DEFAULT_MODEL = "efficientnet_lite0"


def _models_arg(text: str) -> list[str]:
    return [m for m in (part.strip() for part in text.split(",")) if m]


def _fail(message: str) -> int:
    print(f"topfive: error: {message}", file=sys.stderr)
    return 2


# --- classify -------------------------------------------------------------------------------


def _add_classify(sub) -> None:
    p = sub.add_parser(
        "classify",
        help="top-k ImageNet classes for photos",
        description="Print the top-k ImageNet-1k classes (rank, index, WordNet id, name, probability) "
        "for each photo and model. Directories are expanded to the images inside.",
    )
    p.add_argument("paths", nargs="+", metavar="PHOTO|DIR", help="image files or folders of images")
    p.add_argument(
        "--model", "-m", type=_models_arg, default=[DEFAULT_MODEL],
        help="comma-separated model names or model-card paths (default: %(default)s; see `topfive models`)",
    )
    p.add_argument("--top-k", "-k", type=int, default=5, help="how many classes per image (default: 5)")
    p.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table", help="output format")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--recursive", "-r", action="store_true", help="also take images in sub-folders")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument("--weights-file", help="a local state dict to load instead of the published weights")
    _add_speed_options(p)
    p.set_defaults(run=_cmd_classify)


def _add_speed_options(p) -> None:
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


def _cmd_classify(args) -> int:
    from . import output
    from .images import find_images
    from .predict import Classifier, Failure

    if args.top_k < 1:
        return _fail("--top-k must be at least 1")
    paths = find_images(args.paths, recursive=args.recursive)
    if not paths:
        return _fail("no image files found in " + ", ".join(args.paths))
    results, broken_models = [], 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for name in args.model:
        try:
            clf = Classifier(
                name, device=args.device, weights_file=args.weights_file, batch_size=args.batch_size,
                backend=args.backend, calibration=args.calibration, draft=args.draft, threads=args.threads,
            )
        except Exception as e:  # unknown model, weights not available, bad weights file, missing runtime
            print(f"topfive: {name}: {e}", file=sys.stderr)
            broken_models += 1
            continue
        results.extend(clf.iter_predict(paths, top_k=args.top_k, progress=sys.stderr.isatty()))
    if broken_models == len(args.model):
        return 2
    failures = [r for r in results if isinstance(r, Failure)]
    for f in failures:
        print(f"topfive: {f.source}: {f.reason}", file=sys.stderr)
    sys.stdout.write(output.render_predictions(results, args.format))
    if failures:
        print(f"topfive: {len(failures)} of {len(results)} inputs failed", file=sys.stderr)
    return 1 if failures or broken_models else 0


# --- models ---------------------------------------------------------------------------------


def _add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list available models",
        description="List every model with its parameters, GMACs, published ImageNet-1k accuracy, "
        "weight file size, input size and whether its weights are here (cached, packaged, local) "
        "or need a download.",
    )
    p.add_argument("--all-weights", action="store_true", help="list every weights variant, not only the default")
    p.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table", help="output format")
    p.set_defaults(run=_cmd_models)


def _cmd_models(args) -> int:
    from . import output
    from .zoo import all_entries

    entries = all_entries(include_all_weights=args.all_weights)
    sys.stdout.write(output.render_models(entries, args.format))
    return 0


# --- main -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topfive",
        description="Classify images with ImageNet-1k CNNs and compare architectures honestly.",
    )
    parser.add_argument("--version", action="version", version="topfive 0.1.0")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_classify(sub)
    _add_models(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("topfive: interrupted", file=sys.stderr)
        return 130

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
    p.set_defaults(run=_cmd_classify)


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
    for name in args.model:
        try:
            clf = Classifier(name, device=args.device, weights_file=args.weights_file, batch_size=args.batch_size)
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


# --- report -------------------------------------------------------------------------------


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="the comparative study: evaluate + bench + report/REPORT.md with charts",
        description="Run (or reuse the result files of) `topfive evaluate` and `topfive bench`, then write "
        "OUT/REPORT.md with tables, PNG charts and a gallery of disagreements. With no arguments it studies "
        "AlexNet, GoogLeNet, ResNet-50 and EfficientNet-Lite0/1/2 on the default photo set.",
    )
    p.add_argument("--data", help="photo set: folder per label, CSV or manifest (default: the packaged eval manifest)")
    p.add_argument("--models", type=_models_arg, help="comma-separated model names or card paths (default: the study set)")
    p.add_argument("--device", default="cpu", help="device for the speed and memory measurements (default: cpu)")
    p.add_argument("--out", default="report", help="report folder (default: %(default)s)")
    p.add_argument("--mirror", help="local copy of the photo set (default: ../shared/eval when it exists)")
    p.add_argument("--no-reuse", dest="reuse", action="store_false", help="re-run evaluate and bench even if results exist")
    p.add_argument("--readme", metavar="PATH", help="also copy the report into PATH between <!-- report:start/end -->")
    p.add_argument("--quick", action="store_true", help="bench with few repetitions (checks the machinery, not for figures)")
    p.add_argument("--from-results", nargs=2, metavar=("EVAL_DIR", "BENCH_DIR"),
                   help="only render the report from existing result folders; run nothing")
    p.set_defaults(run=_cmd_report)


def _cmd_report(args) -> int:
    from .report import run_study, update_readme, write_report

    try:
        if args.from_results:
            path = write_report(*args.from_results, args.out, image_roots=[args.mirror] if args.mirror else [])
            if args.readme:
                update_readme(args.readme, path)
        else:
            path = run_study(args.data, args.models, args.device, args.out, reuse=args.reuse, mirror=args.mirror,
                             readme=args.readme, quick=args.quick)
    except (RuntimeError, ValueError, OSError) as e:
        return _fail(str(e))
    print(path)
    if args.readme:
        print(f"updated the report section of {args.readme}")
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
    _add_report(sub)
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

"""The `topfive` command: parse arguments, call the library, print. Heavy imports happen inside
the command functions, so `topfive --help` answers without loading torch."""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_MODEL = "efficientnet_lite0"
MODELS_DIR_HELP = "a folder holding the model files of model cards (sets $TOPFIVE_MODELS_DIR)"


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
        "--model", "-m", type=_models_arg, default=DEFAULT_MODEL,
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
    p.add_argument(
        "--decode", choices=["pillow", "tensor"], default="pillow",
        help="pillow (default): Pillow decodes and resizes photo by photo, the reference path; tensor: "
        "torchvision decodes each batch (nvjpeg with --device cuda) and resizes it in one step, with "
        "Pillow's resampling; on the CPU the same pixels as pillow, on CUDA nvjpeg's (EfficientNet-Lite0 "
        "kept top-1 on 99.1 %% of the photo set). See docs/performance.md",
    )


def _cmd_classify(args) -> int:
    from topfive import output
    from topfive.decode.images import find_images
    from topfive.predict import Classifier, Failure

    if args.top_k < 1:
        return _fail("--top-k must be at least 1")
    if args.decode == "tensor" and args.draft:
        return _fail("--draft is Pillow's draft decoding; it does not combine with --decode tensor")
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
                decode=args.decode,
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
    p.add_argument("--dir", metavar="DIR", help="list the model cards (<model file>.json) in this folder instead")
    p.add_argument(
        "--fetch", type=_models_arg, metavar="NAMES",
        help="comma-separated card models (short names or card paths) to download, or copy from --models-dir, "
        "into the cache ($TOPFIVE_CACHE or ~/.cache/topfive/models), checking each sha256",
    )
    p.set_defaults(run=_cmd_models)


def _cmd_models(args) -> int:
    from topfive import output

    if args.fetch:
        from topfive.models.cards import CardError, card_entry, mirror

        failed = 0
        for name in args.fetch:
            try:
                for path in mirror(card_entry(name).card):
                    print(f"{name}: {path}")
            except (CardError, ValueError) as e:
                print(f"topfive: {name}: {e}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    if args.dir:
        from topfive.models.cards import CardEntry, CardError, cards_in

        try:
            entries = [CardEntry(card) for card in cards_in(args.dir)]
        except CardError as e:
            return _fail(str(e))
    else:
        from topfive.models.zoo import all_entries

        entries = all_entries(include_all_weights=args.all_weights)
    sys.stdout.write(output.render_models(entries, args.format))
    return 0


# --- evaluate -------------------------------------------------------------------------------


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy of models on a labelled photo set",
        description="Evaluate models on labelled photos: top-1/top-5 on each photo's accepted class set with "
        "95 % Wilson intervals, per label, McNemar tests between models, calibration and mistake severity. "
        "Writes predictions.csv (resumable), summary.csv, per_label.csv, mcnemar.csv, calibration.csv, "
        "severity.csv, failures.csv and evaluate.json into --out.",
    )
    p.add_argument("--data", required=True, metavar="PATH",
                   help="a folder per label, a CSV (file,label), a manifest CSV (or a folder holding manifest.csv), "
                   "or builtin:eval (the public set's manifest shipped with topfive)")
    p.add_argument("--models", "-m", type=_models_arg, default=DEFAULT_MODEL,
                   help="comma-separated model names (default: %(default)s)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the result files; a rerun resumes")
    p.add_argument("--mirror", metavar="DIR", help="local copy of a manifest's photos (e.g. ../shared/eval)")
    p.add_argument("--cache", metavar="DIR", help="where downloaded photos are kept (default: $TOPFIVE_CACHE/photos "
                   "or ~/.cache/topfive/photos)")
    p.add_argument("--no-download", action="store_true", help="never download a manifest's photos")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.set_defaults(run=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    from topfive.eval.datasets import DatasetError, load_dataset
    from topfive.eval.evaluate import ResumeError, evaluate
    from topfive.eval.wordnet import LabelError

    progress = sys.stderr.isatty()
    try:
        dataset = load_dataset(args.data, mirror=args.mirror, cache=args.cache,
                               download=not args.no_download, progress=progress)
    except (DatasetError, LabelError) as e:
        return _fail(str(e))
    missing = dataset.missing
    for item in missing[:10]:
        print(f"topfive: {item.file}: {item.problem[1]}", file=sys.stderr)
    if len(missing) > 10:
        print(f"topfive: ... and {len(missing) - 10} more photos not available (all in failures.csv)", file=sys.stderr)
    try:
        report = evaluate(dataset, args.models, args.out, device=args.device, batch_size=args.batch_size,
                          progress=progress)
    except ResumeError as e:
        return _fail(str(e))
    _print_summary(args.out)
    failed = report["dataset"]["n_failed"]
    unavailable = [m for m in report["models"] if m["status"] != "evaluated"]
    if failed:
        print(f"topfive: {failed} of {report['dataset']['n_images']} photos could not be used: "
              f"see {args.out}/failures.csv", file=sys.stderr)
    if len(unavailable) == len(report["models"]) or failed == report["dataset"]["n_images"]:
        return 2
    return 1 if failed or unavailable else 0


def _print_summary(out: str) -> None:
    import csv
    from pathlib import Path

    from topfive.tables import text_table as table

    with (Path(out) / "summary.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    lines = []
    for r in rows:
        if r["weights"] != "real":
            lines.append([r["model"], "", "", "", "", "", "not available (reason in summary.csv)"])
            continue
        if not r["top1"]:
            lines.append([r["model"], r["n"], "", "", "", "", "real"])
            continue
        lines.append([r["model"], r["n"], f"{float(r['top1']):.1f} [{float(r['top1_low']):.1f}, {float(r['top1_high']):.1f}]",
                      f"{float(r['top5']):.1f} [{float(r['top5_low']):.1f}, {float(r['top5_high']):.1f}]",
                      r["ece"], r["severity_mean"], "real"])
    sys.stdout.write(table(lines, ["model", "n", "top-1 % [95% CI]", "top-5 % [95% CI]", "ECE", "severity", "weights"],
                           right={1, 4, 5}))


# --- labels ---------------------------------------------------------------------------------


def _add_labels(sub) -> None:
    p = sub.add_parser("labels", help="what a label means in ImageNet-1k classes",
                       description="Labels: ImageNet class names, wnids, indices, or WordNet concepts.")
    lsub = p.add_subparsers(title="commands", metavar="COMMAND")
    e = lsub.add_parser("explain", help="print the ImageNet-1k classes a label expands to",
                        description="Print the set of ImageNet-1k classes a label (class name, wnid, index or "
                        "broader WordNet noun such as `dog`) expands to, and the WordNet senses passed over.")
    e.add_argument("label", nargs="+", help="the label (several words are joined: labels explain domestic cat)")
    e.set_defaults(run=_cmd_labels_explain)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def _cmd_labels_explain(args) -> int:
    from topfive.eval.wordnet import LabelError, explain

    try:
        sys.stdout.write(explain(" ".join(args.label)))
    except LabelError as e:
        return _fail(str(e))
    return 0


# --- bench ----------------------------------------------------------------------------------


def _sizes_arg(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be positive integers")
    return sizes


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="speed and memory of models, each in a fresh process",
        description="Measure parameters, GMACs, weight bytes, batch-1 latency, throughput per batch size, "
        "decode/preprocess time, end-to-end images/s and peak memory (RSS growth while loading and running, "
        "CUDA peak) for each model in its own fresh process, twice, and report the spread. Models without "
        "weights here are measured on their architecture and marked so.",
    )
    p.add_argument("--models", "-m", type=_models_arg, required=True, help="comma-separated model names or card paths")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch-sizes", type=_sizes_arg, default=[1, 16], help="throughput batch sizes (default: 1,16)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--photos", metavar="DIR", help="real photos for decode/preprocess and end-to-end timing")
    p.add_argument("--out", metavar="DIR", help="write bench.json and bench.csv here")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="run under autocast at this dtype")
    p.add_argument("--channels-last", action="store_true", help="model and inputs in channels_last memory format")
    p.add_argument("--quick", action="store_true", help="few repetitions: checks the machinery, not for figures")
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per model (default: 2; spread needs 2+)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per model and repeat (default: 1800)")
    p.set_defaults(run=_cmd_bench)


def _cmd_bench(args) -> int:
    from topfive.bench.runner import render_table, run_bench, write_results

    if args.repeats < 1:
        return _fail("--repeats must be at least 1")
    try:
        environment, rows = run_bench(
            args.models, device=args.device, batch_sizes=args.batch_sizes, threads=args.threads,
            photos=args.photos, amp=args.amp, channels_last=args.channels_last, quick=args.quick,
            repeats=args.repeats, timeout=args.timeout,
            progress=lambda line: print(f"topfive bench: {line}", file=sys.stderr, flush=True),
        )
    except FileNotFoundError as e:
        return _fail(str(e))
    sys.stdout.write(render_table(environment, rows, args.batch_sizes))
    if args.out:
        for path in write_results(args.out, environment, rows, args.batch_sizes):
            print(f"topfive bench: wrote {path}", file=sys.stderr)
    return 1 if any(r.get("error") for r in rows) else 0


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
    from topfive.report.study import run_study, update_readme, write_report

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
    parser.add_argument(
        "--models-dir", metavar="DIR", help=MODELS_DIR_HELP
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_classify(sub)
    _add_models(sub)
    _add_evaluate(sub)
    _add_labels(sub)
    _add_bench(sub)
    _add_report(sub)
    for command in sub.choices.values():  # also accepted after the command name
        command.add_argument("--models-dir", metavar="DIR", default=argparse.SUPPRESS, help=MODELS_DIR_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.models_dir:
        os.environ["TOPFIVE_MODELS_DIR"] = args.models_dir
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("topfive: interrupted", file=sys.stderr)
        return 130

"""`topfive evaluate`: accuracy on a labelled photo set."""

from __future__ import annotations

import sys

from topfive.cli.common import DEFAULT_MODEL, RUNTIMES_HELP, fail, models_arg, runtimes_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy of models on a labelled photo set",
        description="Evaluate models on labelled photos: top-1/top-5 on each photo's accepted class set with "
        "95 % Wilson intervals, per label, McNemar tests between models, calibration and mistake severity. "
        "Writes predictions.csv (resumable), summary.csv, per_label.csv, mcnemar.csv, calibration.csv, "
        "severity.csv, failures.csv and evaluate.json into --out; a row per (model, runtime).",
    )
    p.add_argument("--data", required=True, metavar="PATH",
                   help="a folder per label, a CSV (file,label), a manifest CSV (or a folder holding manifest.csv), "
                   "or builtin:eval (the public set's manifest shipped with topfive). A CSV is UTF-8; its file names "
                   "are relative to its folder (or --mirror) and must stay inside it (see --allow-outside)")
    p.add_argument("--models", "-m", type=models_arg, default=DEFAULT_MODEL,
                   help="comma-separated model names (default: %(default)s)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the result files; a rerun resumes")
    p.add_argument("--mirror", metavar="DIR", help="local copy of a manifest's photos, laid out like the manifest")
    p.add_argument("--cache", metavar="DIR", help="where downloaded photos are kept (default: $TOPFIVE_CACHE/photos "
                   "or ~/.cache/topfive/photos)")
    p.add_argument("--no-download", action="store_true", help="never download a manifest's photos")
    p.add_argument("--allow-outside", action="store_true",
                   help="accept a CSV or manifest whose file names are absolute or climb out of the set's folder "
                   "with ..; without it such a set is refused, so that a set cannot make topfive read other files")
    p.add_argument("--runtime", type=runtimes_arg, default=["auto"], metavar="RUNTIMES",
                   help=RUNTIMES_HELP + " (default: auto)")
    p.add_argument("--calibration", metavar="DIR",
                   help="photos to calibrate the int8 runtime on (a folder of typical images; 64 are taken)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument("--corruptions", type=corruptions_arg, metavar="SPEC",
                   help="also score each model on corrupted copies of the photos (ImageNet-C's kinds and severities, "
                   "made in memory): noise,blur,jpeg,brightness,contrast, each with :SEVERITIES (1-5, default all), "
                   "e.g. blur:1,3,noise or all:1,3,5; writes robustness.csv (resumable), robustness_summary.csv "
                   "and robustness.json")
    p.add_argument("--corruption-photos", type=int, metavar="N",
                   help="score the corrupted copies of N photos spread evenly over the labels (default: all)")
    p.add_argument("--baseline", metavar="MODEL", help="the model corruption errors (mCE) are relative to "
                   "(default: the first of --models)")
    from topfive.scale.options import add_engine_options

    add_engine_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from topfive.eval.datasets import DatasetError, load_dataset
    from topfive.eval.evaluate import ResumeError, evaluate
    from topfive.eval.wordnet import LabelError

    if args.engine == "ray":  # the same result files, computed on Ray Data (topfive.scale)
        from topfive.scale.commands import evaluate_command, ray_missing

        if ray_missing():
            return 2

    progress = sys.stderr.isatty()
    try:
        dataset = load_dataset(args.data, mirror=args.mirror, cache=args.cache,
                               download=not args.no_download, progress=progress, allow_outside=args.allow_outside)
    except (DatasetError, LabelError) as e:
        return fail(str(e))
    missing = dataset.missing
    for item in missing[:10]:
        print(f"topfive: {item.file}: {item.problem[1]}", file=sys.stderr)
    if len(missing) > 10:
        print(f"topfive: ... and {len(missing) - 10} more photos not available (all in failures.csv)", file=sys.stderr)
    try:
        if args.engine == "ray":
            report = evaluate_command(args, dataset, progress)
        else:
            report = evaluate(dataset, args.models, args.out, device=args.device, batch_size=args.batch_size,
                              progress=progress, runtimes=args.runtime, calibration=args.calibration)
    except ResumeError as e:
        return fail(str(e))
    if isinstance(report, int):  # the ray engine could not be had (said on stderr)
        return report
    _print_summary(args.out)
    if args.corruptions and _robustness(args, dataset):
        return 2
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
        name = [r["model"], r["runtime"]]
        if r["weights"] != "real":
            lines.append([*name, "", "", "", "", "", "not available (reason in summary.csv)"])
            continue
        if not r["top1"]:
            lines.append([*name, r["n"], "", "", "", "", "real"])
            continue
        lines.append([*name, r["n"], f"{float(r['top1']):.1f} [{float(r['top1_low']):.1f}, {float(r['top1_high']):.1f}]",
                      f"{float(r['top5']):.1f} [{float(r['top5_low']):.1f}, {float(r['top5_high']):.1f}]",
                      r["ece"], r["severity_mean"], "real"])
    sys.stdout.write(table(lines, ["model", "runtime", "n", "top-1 % [95% CI]", "top-5 % [95% CI]", "ECE", "severity",
                                   "weights"], right={2, 5, 6}))


def corruptions_arg(text: str):
    import argparse

    from topfive.eval.corruptions import parse_corruptions

    try:
        return parse_corruptions(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _robustness(args, dataset) -> int:
    """Runs the corrupted copies after evaluate; 2 when the folder cannot be resumed, else 0."""
    from topfive.eval.evaluate import ResumeError
    from topfive.eval.robustness import robustness

    if args.corruption_photos is not None and args.corruption_photos < 1:
        return fail(f"--corruption-photos must be at least 1, not {args.corruption_photos}")
    try:
        report = robustness(dataset, args.models, args.out, args.corruptions, photos=args.corruption_photos,
                            baseline=args.baseline, runtimes=args.runtime, device=args.device,
                            batch_size=args.batch_size)
    except ResumeError as e:
        return fail(str(e))
    for m in report["models"]:
        if m["status"] == "evaluated":
            mce = "—" if m["mce"] is None else f"{m['mce']:.1f}"
            print(f"{m['name']} ({m['runtime']}): clean top-1 {100 * (m['clean_top1'] or 0):.1f} %, corrupted "
                  f"{100 * (m['corrupted_top1'] or 0):.1f} %, mCE {mce} (robustness_summary.csv)")
    return 0

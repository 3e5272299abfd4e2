"""`topfive report`: the comparative study."""

from __future__ import annotations

from topfive.cli.common import RUNTIMES_HELP, fail, models_arg, runtimes_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="the comparative study: evaluate + bench + report/REPORT.md with charts",
        description="Run (or reuse the result files of) `topfive evaluate` and `topfive bench`, then write "
        "OUT/REPORT.md with tables, PNG charts and a gallery of disagreements. With no arguments it studies "
        "AlexNet, GoogLeNet, ResNet-50 and EfficientNet-Lite0/1/2 (plus the model cards of --cards) on the "
        "default photo set.",
    )
    p.add_argument("--data", help="photo set: folder per label, CSV or manifest (default: builtin:eval, the packaged "
                   "eval manifest)")
    p.add_argument("--models", type=models_arg, help="comma-separated model names or card paths (default: the study "
                   "set and the cards of --cards)")
    p.add_argument("--runtime", type=runtimes_arg, metavar="RUNTIMES",
                   help=RUNTIMES_HELP + ". A model is studied on those of them it can run (a card that runs none: "
                   "on its own). Default: auto, and in the default study EfficientNet-Lite0 also on "
                   "torch, onnxruntime, openvino and int8 (int8 calibrated on the --mirror photos)")
    p.add_argument("--device", default="cpu", help="device for the speed and memory measurements (default: cpu)")
    p.add_argument("--out", default="report", help="report folder (default: %(default)s)")
    p.add_argument("--mirror", metavar="DIR", help="local copy of the photo set (default: $TOPFIVE_EVAL_DIR when set)")
    p.add_argument("--cards", metavar="DIR", help="a folder of model cards (*.json) added to the default study "
                   "(default: $TOPFIVE_MODELS_DIR when set)")
    p.add_argument("--no-reuse", dest="reuse", action="store_false", help="re-run evaluate and bench even if results exist")
    p.add_argument("--readme", metavar="PATH", help="also write the study, condensed, into PATH between <!-- report:start/end -->")
    p.add_argument("--quick", action="store_true", help="bench with few repetitions (checks the machinery, not for figures)")
    p.add_argument("--from-results", nargs=2, metavar=("EVAL_DIR", "BENCH_DIR"),
                   help="only render the report from existing result folders; run nothing")
    p.set_defaults(run=run)


def run(args) -> int:
    from topfive.report import run_study, update_readme, write_report
    from topfive.report.defaults import default_mirror

    try:
        if args.from_results:
            mirror = args.mirror or default_mirror()
            path = write_report(*args.from_results, args.out, image_roots=[mirror] if mirror else [])
            if args.readme:
                update_readme(args.readme, path)
        else:
            path = run_study(args.data, args.models, args.device, args.out, reuse=args.reuse, mirror=args.mirror,
                             readme=args.readme, quick=args.quick, cards=args.cards, runtimes=args.runtime)
    except (RuntimeError, ValueError, OSError) as e:
        return fail(str(e))
    print(path)
    if args.readme:
        print(f"updated the report section of {args.readme}")
    return 0

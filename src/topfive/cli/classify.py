"""`topfive classify`: the top-k classes of photos."""

from __future__ import annotations

import sys

from topfive.cli.common import DEFAULT_MODEL, add_speed_options, fail, models_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "classify",
        help="top-k ImageNet classes for photos",
        description="Print the top-k ImageNet-1k classes (rank, index, WordNet id, name, probability) "
        "for each photo and model. Directories are expanded to the images inside.",
    )
    p.add_argument("paths", nargs="+", metavar="PHOTO|DIR", help="image files or folders of images")
    p.add_argument(
        "--model", "-m", type=models_arg, default=DEFAULT_MODEL,
        help="comma-separated model names or model-card paths (default: %(default)s; see `topfive models`)",
    )
    p.add_argument("--top-k", "-k", type=int, default=5, help="how many classes per image (default: 5)")
    p.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table", help="output format")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--recursive", "-r", action="store_true", help="also take images in sub-folders")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument("--weights-file", help="a local state dict to load instead of the published weights")
    add_speed_options(p)
    from topfive.scale.options import add_engine_options

    add_engine_options(p, out=True)
    p.set_defaults(run=run)


def run(args) -> int:
    from topfive import output
    from topfive.decode.images import ImageUnreadable, find_images
    from topfive.predict import Classifier, Failure
    from topfive.models.cards import CardError
    from topfive.runtime.base import OutputSizeError

    if args.top_k < 1:
        return fail("--top-k must be at least 1")
    if args.decode != "pillow" and args.draft:
        return fail(f"--draft is Pillow's draft decoding; it does not combine with --decode {args.decode}")
    if args.engine == "ray":  # the same rows, computed on Ray Data into --out (topfive.scale)
        from topfive.scale.commands import classify_command

        return classify_command(args)
    unreadable: dict[str, str] = {}
    paths = find_images(args.paths, recursive=args.recursive, problems=unreadable)
    if not paths:
        return fail("no image files found in " + ", ".join(args.paths))
    results, broken_models = [], 0
    for name in args.model:
        try:
            clf = Classifier(
                name, device=args.device, weights_file=args.weights_file, batch_size=args.batch_size,
                runtime=args.runtime, calibration=args.calibration, draft=args.draft, threads=args.threads,
                decode=args.decode,
            )
        except Exception as e:  # unknown model, weights not available, bad weights file, missing runtime
            print(f"topfive: {name}: {e}", file=sys.stderr)
            broken_models += 1
            continue
        # What could not be stat'ed or listed is reported here, in its place, and never given to the decoder.
        readable = [p for p in paths if p not in unreadable]
        try:
            predicted = iter(list(clf.iter_predict(readable, top_k=args.top_k, progress=sys.stderr.isatty())))
        except (CardError, OutputSizeError) as e:  # a model whose output is not what its card says
            print(f"topfive: {name}: {e}", file=sys.stderr)
            broken_models += 1
            continue
        results.extend(Failure(p, clf.name, ImageUnreadable.__name__, unreadable[p]) if p in unreadable
                       else next(predicted) for p in paths)
    if broken_models == len(args.model):
        return 2
    failures = [r for r in results if isinstance(r, Failure)]
    for f in failures:
        print(f"topfive: {output.shown(f.source)}: {output.shown(f.reason)}", file=sys.stderr)
    sys.stdout.write(output.render_predictions(results, args.format))
    if failures:
        print(f"topfive: {len(failures)} of {len(results)} inputs failed", file=sys.stderr)
    return 1 if failures or broken_models else 0

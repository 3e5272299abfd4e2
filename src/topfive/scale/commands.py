"""The `--engine ray` branch of `topfive classify` and `topfive evaluate`: run on Ray, report as the
local path does (failures on stderr, the same exit codes)."""

from __future__ import annotations

import sys

from topfive.output import shown
from topfive.scale.options import engine_from

SHOWN_FAILURES = 20  # a million photos may have thousands: the rest are in the CSV


def error(message: str) -> int:
    print(f"topfive: error: {message}", file=sys.stderr)
    return 2


def classify_command(args) -> int:
    from topfive.scale.classify import classify_on_ray
    from topfive.scale.ray_engine import EngineMissing

    if not args.out:
        return error("--engine ray writes its results into a folder: give --out DIR")
    try:
        run = classify_on_ray(
            args.paths, args.model, args.out, engine_from(args, sys.stderr.isatty()), recursive=args.recursive,
            runtime=args.runtime, device=args.device, batch_size=args.batch_size, top_k=args.top_k,
            decode=args.decode, draft=args.draft, threads=args.threads, weights_file=args.weights_file,
            calibration=args.calibration,
        )
    except (EngineMissing, ValueError) as e:  # ValueError: no images, a CSV that cannot be read
        return error(str(e))
    if not run.models:
        return 2
    for source, reason in run.failures[:SHOWN_FAILURES]:
        print(f"topfive: {shown(source)}: {shown(reason)}", file=sys.stderr)
    if len(run.failures) > SHOWN_FAILURES:
        print(f"topfive: ... and {len(run.failures) - SHOWN_FAILURES} more (their rows in {run.csv})", file=sys.stderr)
    n = run.n_inputs * run.models
    print(f"topfive: {n} results in {run.csv} and {run.parquet}", file=sys.stderr)
    if run.failures:
        print(f"topfive: {len(run.failures)} of {n} inputs failed", file=sys.stderr)
    return 1 if run.failures or run.broken else 0


def ray_evaluate(args):
    """topfive.eval.evaluate.evaluate's signature, run on Ray with the engine options in `args`: the
    same files in --out and the same evaluate.json data returned (ResumeError as it raises it)."""
    from topfive.scale.evaluate import evaluate_on_ray
    from topfive.scale.ray_engine import EngineMissing

    def evaluate(dataset, models, out, device="cpu", batch_size=16, progress=False, runtimes=("auto",),
                 calibration=None, **more):
        asked = sorted(k for k, v in more.items() if v)
        if asked:
            raise SystemExit(error(f"{', '.join(asked)}: not with --engine ray"))
        try:
            return evaluate_on_ray(dataset, models, out, engine_from(args, progress), runtimes=runtimes,
                                   device=device, batch_size=batch_size, calibration=calibration)
        except EngineMissing as e:
            raise SystemExit(error(str(e))) from None

    return evaluate

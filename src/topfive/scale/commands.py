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
    from topfive.scale.ray_engine import EngineMissing, EngineUnavailable

    if not args.out:
        return error("--engine ray writes its results into a folder: give --out DIR")
    try:
        run = classify_on_ray(
            args.paths, args.model, args.out, engine_from(args, sys.stderr.isatty()), recursive=args.recursive,
            runtime=args.runtime, device=args.device, batch_size=args.batch_size, top_k=args.top_k,
            decode=args.decode, draft=args.draft, threads=args.threads, weights_file=args.weights_file,
            calibration=args.calibration,
        )
    except (EngineMissing, EngineUnavailable, ValueError) as e:  # ValueError: no images, an unreadable CSV
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


def ray_missing() -> int:
    """2 after the install message when Ray Data is not installed, else 0 (checked before anything is
    downloaded or written)."""
    from topfive.scale.ray_engine import EngineMissing, import_ray

    try:
        import_ray()
    except EngineMissing as e:
        return error(str(e))
    return 0


def evaluate_command(args, dataset, progress: bool) -> dict | int:
    """`topfive evaluate --engine ray`: evaluate.json's data, as topfive.eval.evaluate.evaluate returns
    it (ResumeError as it raises it), or the exit code 2 after a one-line error when Ray cannot be had."""
    from topfive.scale.evaluate import evaluate_on_ray
    from topfive.scale.ray_engine import EngineMissing, EngineUnavailable

    try:
        return evaluate_on_ray(dataset, args.models, args.out, engine_from(args, progress), runtimes=args.runtime,
                               device=args.device, batch_size=args.batch_size, calibration=args.calibration)
    except (EngineMissing, EngineUnavailable) as e:
        return error(str(e))

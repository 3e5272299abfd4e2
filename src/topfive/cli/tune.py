"""`topfive tune MODEL...`: time the fp32 runtimes on this machine and show what `auto` runs each model on."""

from __future__ import annotations

import logging
import sys

from topfive.cli.common import fail


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune", help="measure which runtime auto runs a model on here",
        description="Time the installed fp32 runtimes that give eager torch's answers (onnxruntime, openvino, "
        "torch) on synthetic inputs, print images/s at batch 8 and ms at batch 1, and show the one auto "
        "picks: the most images/s at batch 8. The choice is cached per model, machine and library versions "
        "(in $TOPFIVE_CACHE/tune); the first auto use measures it otherwise. Model cards are not tuned.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="zoo models (e.g. efficientnet_lite0 resnet50)")
    p.add_argument("--seconds", type=float, default=None,
                   help="timing per runtime after its warm-up, half at batch 1 and half at batch 8 (default: 1.5)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: all cores); part of the cache key")
    p.add_argument("--force", action="store_true", help="measure again even where a choice is cached")
    p.set_defaults(run=run)


class StderrNotes(logging.Handler):
    """The library's INFO notes as `topfive: ...` lines; sys.stderr is looked up at each line, so a
    replaced stream (a test's capture, a redirect) gets them."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"topfive: {record.getMessage()}", file=sys.stderr)


def show_library_notes() -> None:
    """Let the command line show what the library says at INFO (auto's runtime choice), once per process."""
    logger = logging.getLogger("topfive")
    if not any(isinstance(h, StderrNotes) for h in logger.handlers):
        logger.addHandler(StderrNotes(logging.INFO))
        logger.setLevel(logging.INFO)
        # shown once, here: a library that configures the root logger (onnxruntime's quantiser does)
        # would print each note a second time
        logger.propagate = False


def run(args) -> int:
    from topfive.models import resolve
    from topfive.runtime.registry import auto_choice, card_runtime
    from topfive.runtime.tune import ENV, cache_path, load, pinned

    if args.seconds is not None and args.seconds <= 0:
        return fail("--seconds must be positive")
    try:
        pin = pinned()
    except ValueError as e:
        return fail(str(e))
    failed = 0
    for name in args.models:
        try:
            entry = resolve(name)
            if not entry.has_module:
                print(f"{entry.info.name}: a model card; auto runs it on {card_runtime(entry.card.format)}, its "
                      "format's reference runtime (cards are not tuned: their runtimes need not agree)\n")
                continue
            if args.force or load(cache_path(entry.info.name, args.threads)) is None:
                print(f"{entry.info.name}: timing the fp32 runtimes ...", file=sys.stderr, flush=True)
            tuning = auto_choice(entry, threads=args.threads, seconds=args.seconds, force=args.force)
        except Exception as e:  # noqa: BLE001  (one model failing leaves the others to tune)
            print(f"topfive: {name}: {e}", file=sys.stderr)
            failed += 1
            continue
        state = f"cached in {tuning.path}" if tuning.path else "not cached: no runtime could be timed"
        if tuning.cached:
            state += " (measured before; --force measures again)"
        print(f"{tuning.model}  ({tuning.seconds:g} s per runtime, threads: {tuning.threads or 'all cores'})")
        sys.stdout.write(tuning.table())
        print(f"auto: {tuning.choice}: {tuning.why}\n{state}")
        if pin:
            print(f"note: {ENV}={pin} is set, so auto runs {pin} without reading this choice")
        print()
    return 1 if failed else 0

"""`topfive bench`: speed and memory, each model in a fresh process."""

from __future__ import annotations

import sys

from topfive.cli.common import RUNTIMES_HELP, fail, models_arg, runtimes_arg, sizes_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="speed and memory of models, each in a fresh process",
        description="Measure parameters, GMACs, weight bytes, batch-1 latency, throughput per batch size, "
        "decode/preprocess time, end-to-end images/s and peak memory (RSS growth while loading and running, "
        "CUDA peak) for each model on each runtime in its own fresh process, twice, and report the spread. "
        "Models without weights here are measured on their architecture and marked so.",
    )
    p.add_argument("--models", "-m", type=models_arg, required=True, help="comma-separated model names or card paths")
    p.add_argument("--runtime", type=runtimes_arg, default=["auto"], metavar="RUNTIMES",
                   help=RUNTIMES_HELP + " (default: auto; with --amp or --channels-last, auto is torch). On torch "
                   "and compile (and auto when it runs torch) a zoo model's params, GMACs and weight bytes are counted; on the others they are left empty")
    p.add_argument("--calibration", metavar="DIR",
                   help="photos to calibrate the int8 runtime on (a folder of typical images; 64 are taken)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch-sizes", type=sizes_arg, default=[1, 16], help="throughput batch sizes (default: 1,16)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    p.add_argument("--photos", metavar="DIR", help="real photos for decode/preprocess and end-to-end timing")
    p.add_argument("--out", metavar="DIR", help="write bench.json and bench.csv here")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="the torch runtime under autocast at this dtype")
    p.add_argument("--channels-last", action="store_true",
                   help="the torch runtime in channels_last memory format (model, inputs and end to end)")
    p.add_argument("--quick", action="store_true", help="few repetitions: checks the machinery, not for figures")
    p.add_argument("--repeats", type=int, default=2, help="fresh processes per model (default: 2; spread needs 2+)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per model and repeat (default: 1800)")
    p.set_defaults(run=run)


def run(args) -> int:
    from topfive.bench import render_table, run_bench, write_results

    if args.repeats < 1:
        return fail("--repeats must be at least 1")
    try:
        environment, rows = run_bench(
            args.models, device=args.device, batch_sizes=args.batch_sizes, threads=args.threads,
            photos=args.photos, amp=args.amp, channels_last=args.channels_last, quick=args.quick,
            repeats=args.repeats, timeout=args.timeout, runtimes=args.runtime, calibration=args.calibration,
            progress=lambda line: print(f"topfive bench: {line}", file=sys.stderr, flush=True),
        )
    except FileNotFoundError as e:
        return fail(str(e))
    sys.stdout.write(render_table(environment, rows, args.batch_sizes))
    if args.out:
        for path in write_results(args.out, environment, rows, args.batch_sizes):
            print(f"topfive bench: wrote {path}", file=sys.stderr)
    return 1 if any(r.get("error") for r in rows) else 0

"""Why torch.profiler's summed "CPU Mem" is not memory: the seed's setting, measured both ways.

The seed (AlexNet, GoogLeNet, ResNet-50; 50 photos; CPU; one image per pass) reported the sum of
torch.profiler's CPU memory allocations as each model's memory: ~147 MiB / 2.4 GiB / 4.4 GiB.
That figure adds up every tensor allocated in every pass, although each pass frees its
activations before the next one starts; it grows with the number of passes, while the memory in
use does not. This script runs each model in a fresh process (the bench's own measurement code),
makes the same 50 single-image passes over the same 50 preprocessed photos, and prints:

- our figures: peak RSS growth over the post-import baseline while loading, and while running the
  50 passes; and the run peak over the RSS once loaded (what the passes add on top of the weights);
- the profiler's sum of "Self CPU Mem" (positive entries of key_averages(), i.e. the allocations)
  over the same 50 passes, run after our measurement so that the profiler's own bookkeeping does
  not inflate the RSS figures.

Weights are not needed (memory and speed do not depend on their values); without them the models
are built from their architecture, marked "architecture only".

    PYTHONPATH=src python benchmarks/seed_memory.py [--photos ../shared/eval] [--n 50] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import EVAL

MODELS = ["alexnet", "googlenet", "resnet50"]
MIB = 1024 * 1024


def one(model: str, photos: list[str], threads: int | None) -> dict:
    """In the fresh process: baseline, load, 50 passes (RSS), then the same 50 passes profiled."""
    import os

    os.environ["TOPFIVE_OFFLINE"] = "1"
    import torch
    import torchvision  # noqa: F401

    from topfive import load_image, resolve
    from topfive.bench import PeakRSS, load, release_free_memory, rss_now
    from topfive.transforms import preprocess

    if threads:
        torch.set_num_threads(threads)
    spec = resolve(model).info.preprocess
    # Inputs are decoded first, so that the run figures are the model's alone.
    inputs = [preprocess(load_image(p), spec).unsqueeze(0) for p in photos]
    with torch.inference_mode():
        torch.nn.functional.conv2d(torch.randn(8, 3, 16, 16), torch.randn(4, 3, 3, 3)).sum().item()
    peak = PeakRSS()
    release_free_memory()
    baseline = rss_now()
    peak.reset()
    loaded = load(model, "cpu")  # the torch runtime, NCHW fp32, as the seed ran it
    load_peak = peak.read()
    release_free_memory()
    loaded_rss = rss_now()
    net = loaded.module

    peak.reset()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in inputs:
            net(x)
    run_s = time.perf_counter() - t0
    run_peak = peak.read()

    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for x in inputs:
            net(x)
    events = prof.key_averages()
    allocated = sum(e.self_cpu_memory_usage for e in events if e.self_cpu_memory_usage > 0)
    return {
        "model": model,
        "canonical": loaded.name,
        "weights": loaded.weights,
        "passes": len(inputs),
        "weight_mib": sum(t.numel() * t.element_size() for t in list(net.parameters()) + list(net.buffers())) / MIB,
        "rss_load_mib": (load_peak - baseline) / MIB,
        "rss_run_mib": (run_peak - baseline) / MIB,
        "run_over_loaded_mib": (run_peak - loaded_rss) / MIB,
        "profiler_cpu_mem_sum_mib": allocated / MIB,
        "profiler_per_pass_mib": allocated / MIB / len(inputs),
        "run_s": run_s,
        "threads": torch.get_num_threads(),
        "rss_method": peak.method,
        "pid": os.getpid(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=str(EVAL))
    parser.add_argument("--n", type=int, default=50, help="photos, one single-image pass each (default: 50)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this model in this process
    parser.add_argument("--photo-list", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        print(json.dumps(one(args.one, json.loads(args.photo_list), args.threads)))
        return 0

    from topfive.bench import pick_photos, worker_env

    photos = pick_photos(args.photos, args.n)
    results = []
    for model in args.models.split(","):
        cmd = [sys.executable, __file__, "--one", model, "--photo-list", json.dumps(photos)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(args.threads))
        if proc.returncode != 0:
            print(f"{model}: failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"seed_memory: {model} done (pid {results[-1]['pid']})", file=sys.stderr)

    print(f"Seed setting: {len(photos)} photos from {args.photos}, CPU, batch 1, one fresh process per model "
          f"({results[0]['threads'] if results else '?'} threads; peak RSS by {results[0]['rss_method'] if results else '?'}).")
    print()
    print("| model | weights | weights MiB | RSS growth load | RSS growth run | run over loaded "
          f"| profiler summed Self CPU Mem ({len(photos)} passes) | per pass | profiler sum / run over loaded |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = r["profiler_cpu_mem_sum_mib"] / max(r["run_over_loaded_mib"], 1e-9)
        print(
            f"| {r['model']} | {r['weights']} | {r['weight_mib']:.0f} | +{r['rss_load_mib']:.0f} MiB "
            f"| +{r['rss_run_mib']:.0f} MiB | +{r['run_over_loaded_mib']:.0f} MiB "
            f"| {r['profiler_cpu_mem_sum_mib']:,.0f} MiB | {r['profiler_per_pass_mib']:.1f} MiB | {ratio:,.0f}x |"
        )
    print()
    print("RSS growth load / run: peak resident memory over the post-import baseline while loading / while the")
    print("50 passes ran (weights included). Run over loaded: the peak of the passes over the RSS once the model")
    print("was loaded, i.e. what inference adds. The profiler column sums every allocation of every pass: it is")
    print("allocation traffic (about the per-pass figure times the number of passes), not a footprint, because")
    print("each pass frees its activations before the next one allocates them again.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

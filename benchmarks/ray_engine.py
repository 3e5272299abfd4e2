"""Images/s of `topfive classify` on the local path against `--engine ray` on this machine, in one run.

Both classify the same photos with the same model and runtime: the local path is Classifier.iter_predict
(decoding in worker threads one batch ahead of the model), the Ray path is topfive.scale's pipeline
(decode tasks -> a pool of model actors -> Parquet and CSV shards, then the merge) on a local Ray
started once. Each timing includes loading the model (the local Classifier, or the actors), as a
`topfive classify` does; they alternate round by round so that a neighbour's load hits both. Then the
per-image costs the scale-out plan in docs/scale-out.md is made from: decode + preprocess of one
photo on one core, and the model's forward per image in batches of 16 on one thread and on all.

    PYTHONPATH=src python benchmarks/ray_engine.py --photos 500
    PYTHONPATH=src python benchmarks/ray_engine.py --photos 500 --decode-cpus 0.5 --actors 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import torch

from _common import machine, photo_set
from topfive import Classifier, resolve
from topfive.decode import PillowDecoder
from topfive.runtime import make_runtime


def local_run(paths: list[str], runtime: str, batch: int) -> int:
    clf = Classifier("efficientnet_lite0", runtime=runtime, batch_size=batch)
    return sum(1 for _ in clf.iter_predict(paths))


def ray_run(paths: list[str], runtime: str, batch: int, engine) -> int:
    from topfive.scale.classify import classify_on_ray

    out = tempfile.mkdtemp(prefix="topfive-ray-bench-")
    try:
        run = classify_on_ray(paths, ["efficientnet_lite0"], out, engine, runtime=runtime, batch_size=batch)
        return run.n_inputs
    finally:
        shutil.rmtree(out)


def per_image_costs(paths: list[str], runtime: str, n: int = 48) -> dict[str, float]:
    """ms per image: decode + preprocess on one core, and the model per image in batches of 16."""
    entry = resolve("efficientnet_lite0")
    decoder = PillowDecoder(entry.info.preprocess)
    torch.set_num_threads(1)
    start = time.perf_counter()
    tensors = [decoder.prepare(p) for p in paths[:n]]
    decode_ms = 1000 * (time.perf_counter() - start) / n
    batch = torch.stack(tensors[:16])
    costs = {"decode + preprocess, 1 core": decode_ms}
    for threads in (1, os.cpu_count() or 1):
        model = make_runtime(entry, runtime, threads=threads)
        model.probabilities(batch)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            model.probabilities(batch)
            times.append(time.perf_counter() - start)
        costs[f"model forward, batch 16, {threads} thread(s)"] = 1000 * statistics.median(times) / 16
    torch.set_num_threads(os.cpu_count() or 1)
    return costs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=500)
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--actor-cpus", type=float, default=1.0)
    ap.add_argument("--decode-cpus", type=float, default=1.0)
    ap.add_argument("--shard-size", type=int, default=256)
    args = ap.parse_args()

    import ray

    from topfive.scale.ray_engine import Engine

    paths = [p for p, _ in photo_set(args.photos)]
    print(f"machine: {machine()}")
    print(f"{len(paths)} photos, efficientnet_lite0 on {args.runtime}, batch {args.batch_size}; ray: {args.actors} "
          f"actor(s) of {args.actor_cpus} CPU, decode tasks of {args.decode_cpus} CPU, shards of {args.shard_size}")
    start = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print(f"ray.init (once per session, not in the timings): {time.perf_counter() - start:.1f} s")
    engine = Engine(actors=args.actors, actor_cpus=args.actor_cpus, decode_cpus=args.decode_cpus,
                    shard_size=args.shard_size)
    contenders = {"local": lambda photos: local_run(photos, args.runtime, args.batch_size),
                  "ray": lambda photos: ray_run(photos, args.runtime, args.batch_size, engine)}
    small = paths[: args.batch_size]
    # the session's first run also starts Ray's worker processes (each imports torch): shown, not timed
    for name, fn in contenders.items():
        start = time.perf_counter()
        fn(small)
        print(f"  first run in the session, {len(small)} photos: {name:5s} {time.perf_counter() - start:5.1f} s")
    times: dict[str, list[float]] = {"local": [], "ray": [], "local small": [], "ray small": []}
    for k in range(args.rounds):
        for name, fn in contenders.items():
            for photos, key in ((paths, name), (small, f"{name} small")):
                start = time.perf_counter()
                assert fn(photos) == len(photos)
                times[key].append(time.perf_counter() - start)
            print(f"  round {k + 1} {name:5s} {times[name][-1]:6.1f} s  {len(paths) / times[name][-1]:6.1f} images/s"
                  f"   ({len(small)} photos: {times[name + ' small'][-1]:.1f} s)")
    ray.shutdown()
    local, remote = statistics.median(times["local"]), statistics.median(times["ray"])
    print(f"median of {args.rounds}: local {len(paths) / local:.1f} images/s; ray {len(paths) / remote:.1f} images/s; "
          f"ray takes {remote / local:.2f}x the local time (goal: at most 1.3x)")
    print(f"a run of {len(small)} photos (the cost of any run: loading the model, starting the actors): "
          f"local {statistics.median(times['local small']):.1f} s, ray {statistics.median(times['ray small']):.1f} s")
    for what, ms in per_image_costs(paths, args.runtime).items():
        print(f"  {what}: {ms:.2f} ms/image")
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()

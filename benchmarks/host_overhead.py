"""What one batch of the tensor pipeline costs the calling thread, apart from the pixel work.

On a GPU the pixel arithmetic of a batch is a few milliseconds; the H200 runs (docs/gpu-runs) spent
~37 ms of the calling thread per batch of 256 ~500 px photos instead: Python and one dispatch per
tensor operation, under the GIL, where the worker threads preparing the next batches and the
thread running the model take turns. This measures that part on the CPU: the pipeline on the eval
photos' sizes shrunk 16 times (--shrink), so the pixel work is negligible and what is left is the cost per
image and per operation. It counts the tensor operations dispatched (a GPU launches one kernel for
most) at two batch sizes, and times the calls (median of 9).

    PYTHONPATH=src python benchmarks/host_overhead.py
    PYTHONPATH=src python benchmarks/host_overhead.py --against dd4bbc9   # an earlier commit too, alternately

With --against, the earlier commit's src/ (from `git archive`) and this tree's are measured in
alternating child processes (A B A B ...; median over rounds), so the ratio comes from one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Operations that only make a new view of existing memory: no kernel runs for them on a GPU.
VIEW_OPS = {"view", "_unsafe_view", "reshape", "as_strided", "permute", "unsqueeze", "squeeze", "expand", "slice",
            "select", "transpose", "t", "unbind", "alias", "lift_fresh", "detach"}


def operation_count():
    """A TorchDispatchMode that records the name of each tensor operation dispatched in it."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OperationCount(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

        def kernels(self) -> list[str]:
            """The operations that are not views, sorted."""
            return sorted(op for op in self.ops if op not in VIEW_OPS)

    return OperationCount()


def child(batch: int, calls: int, shrink: int) -> dict:
    """{stage: {"ms": median ms per batch, "ops": {batch size: operations}}} for the topfive on sys.path."""
    import torch
    from PIL import Image
    import topfive.decode.tensor as tp
    from topfive.models.zoo import resolve

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import photo_set

    torch.set_num_threads(1)
    spec = resolve("resnet50").info.preprocess  # as benchmarks/gpu.py
    tiny_spec = dataclasses.replace(spec, size=spec.size // shrink, resize=spec.resize // shrink)
    paths = [p for p, _ in photo_set()]
    jpegs = []
    for path in (paths * (-(-batch // len(paths))))[:batch]:
        with Image.open(path) as img:
            out = io.BytesIO()
            img.convert("RGB").reduce(shrink).save(out, format="JPEG", quality=90)
            jpegs.append(out.getvalue())
    decoded = tp._decode_many(jpegs, torch.device("cpu"))
    stages = {
        "read + parse headers": lambda n: [tp._read(b, False) for b in jpegs[:n]],
        "resize + crop": lambda n: tp.resize_crop(decoded[:n], tiny_spec),
        "prepare_batch (batched decode)": lambda n: tp._prepare_batch(jpegs[:n], tiny_spec, torch.device("cpu"), None, batched=True),
    }

    result = {}
    for name, fn in stages.items():
        ops = {}
        for n in (batch // 4, batch):
            with operation_count() as count:
                fn(n)
            ops[n] = len(count.kernels())
        fn(batch)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn(batch)
            times.append((time.perf_counter() - start) * 1e3)
        result[name] = {"ms": statistics.median(times), "ops": ops}
    return result


def source_tree(rev: str, folder: Path) -> Path:
    """src/ of `rev`, unpacked under folder."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def run_child(src: Path, batch: int, calls: int, shrink: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, __file__, "--child", "--batch", str(batch), "--calls", str(calls), "--shrink", str(shrink)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--shrink", type=int, default=16, help="divide photo sizes and geometry by this (1: the real pixel work)")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: child processes per tree")
    parser.add_argument("--against", help="also measure this commit's src/, alternately")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.batch, args.calls, args.shrink)))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import machine

    print(f"machine: {machine()}")
    print(f"batch {args.batch}; eval photo sizes / {args.shrink}, ResNet-50 geometry / {args.shrink}; ms per batch = median of {args.calls} calls;"
          " ops = tensor operations dispatched, views aside")
    trees = {"this tree": ROOT / "src"}
    with tempfile.TemporaryDirectory(prefix="topfive-host-") as tmp:
        if args.against:
            trees[args.against] = source_tree(args.against, Path(tmp))
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds if args.against else 1):
            for name, src in trees.items():
                runs[name].append(run_child(src, args.batch, args.calls, args.shrink))
    small = args.batch // 4
    header = "| stage | " + " | ".join(f"{name}: ms (ops at {small} / {args.batch})" for name in trees)
    print(header + (" | this tree / against |" if args.against else " |"))
    print("|---|" + "---:|" * (len(trees) + bool(args.against)))
    for stage in next(iter(runs.values()))[0]:
        ms = {name: statistics.median(r[stage]["ms"] for r in rs) for name, rs in runs.items()}
        cells = [f"{ms[name]:.1f} ({rs[0][stage]['ops'][str(small)]} / {rs[0][stage]['ops'][str(args.batch)]})" for name, rs in runs.items()]
        ratio = [f"{ms['this tree'] / ms[args.against]:.2f}x"] if args.against else []
        print(f"| {stage} | " + " | ".join(cells + ratio) + " |")


if __name__ == "__main__":
    main()

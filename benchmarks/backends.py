"""Runtime throughput on CPU, and what int8 costs in agreement and accuracy. Prints figures; no pass/fail.

1. ResNet-50 architecture (random weights, seed 0; speed does not depend on weight values), batch 16:
   the runtimes vs ONNX Runtime's own `session.run` on the same exported file (the runtime's `raw`),
   timed round-robin; with OpenVINO installed also OpenVINO on that export; with torchao installed,
   also PT2E int8 (X86InductorQuantizer + inductor), the issue's other int8 route.
2. EfficientNet-Lite0/1/2 (real weights): fp32 vs int8 throughput at batch 16 on 64 real photos, and on
   the photo set (full decode) top-1 agreement of int8 with the torch fp32 NCHW reference and the
   accuracy of both.

    PYTHONPATH=src python benchmarks/backends.py            # everything (~10 min on 2 busy cores)
    PYTHONPATH=src python benchmarks/backends.py --photos 100 --no-compile
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import time
from typing import Callable

import torch

from _common import EVAL, accuracy, interleaved, machine, photo_set, run_all, top1_agreement
from topfive import load_image, resolve
from topfive.machine import load_average
from topfive.runtime import make_runtime
from topfive.transforms import preprocess

CALIBRATION = EVAL / "images"


def resnet50_speed(batch: int, rounds: int, compile_too: bool) -> None:
    print(f"\n## ResNet-50 architecture (random weights, seed 0), batch {batch}, fp32 unless said")
    entry = resolve("resnet50")
    torch.manual_seed(0)
    model = entry.build(pretrained=False)
    x = torch.randn(batch, 3, 224, 224)
    xn = x.numpy()

    def runtime(kind: str, **options):
        # each torch runtime gets its own copy: moving a module to channels_last changes it in place
        module = copy.deepcopy(model) if kind in ("torch", "compile") else model
        return make_runtime(entry, kind, module=module, tag="random-seed0", **options)

    start = time.perf_counter()
    onnx = runtime("onnxruntime")
    print(f"ONNX export (or cache hit): {time.perf_counter() - start:.1f} s -> {onnx.path.name}")
    start = time.perf_counter()
    int8 = runtime("int8", calibration=CALIBRATION)
    print(f"int8 quantisation (or cache hit): {time.perf_counter() - start:.1f} s -> {int8.path.name}")
    def on_x(r):
        return lambda: r.probabilities(x)

    contenders = {
        "onnxruntime session.run (reference)": lambda: onnx.raw(xn),
        "runtime onnxruntime (+ softmax)": on_x(onnx),
        "runtime torch, NCHW": on_x(runtime("torch", channels_last=False)),
        "runtime torch, channels_last": on_x(runtime("torch")),
        "runtime int8 (ORT static QDQ)": on_x(int8),
    }
    if importlib.util.find_spec("openvino") is not None:
        # Another runtime on the same exported model: does the speed depend on ONNX Runtime?
        contenders["OpenVINO on the fp32 ONNX export"] = on_x(runtime("openvino", threads=torch.get_num_threads()))
    if importlib.util.find_spec("torchao") is not None:  # the other int8 route; `pip install torchao`
        start = time.perf_counter()
        pt2e = pt2e_int8(model, photo_tensors(entry, photo_set(4 * batch)), batch)
        pt2e(x)
        print(f"PT2E int8 quantisation + compilation: {time.perf_counter() - start:.1f} s")
        contenders["PT2E int8 (torchao X86InductorQuantizer, inductor)"] = lambda: pt2e(x)
    else:
        print("PT2E int8 not timed: torchao is not installed (`pip install torchao`)")
    if compile_too:
        compiled = runtime("compile")
        start = time.perf_counter()
        compiled.probabilities(x)
        print(f"torch.compile first call (compilation): {time.perf_counter() - start:.1f} s")
        contenders["runtime compile (inductor, channels_last)"] = on_x(compiled)
    seconds = interleaved(contenders, rounds=rounds)
    ort = batch / seconds["onnxruntime session.run (reference)"]
    fp32_best = max(batch / s for name, s in seconds.items() if name.startswith("runtime ") and "int8" not in name)
    print(f"{'contender':45s} {'img/s':>7s} {'x ORT':>6s}")
    for name, s in seconds.items():
        print(f"{name:45s} {batch / s:7.1f} {batch / s / ort:6.2f}")
    int8_speed = batch / seconds["runtime int8 (ORT static QDQ)"]
    print(f"int8 / best fp32 runtime of ours: {int8_speed / fp32_best:.2f}x;  int8 / ORT fp32: {int8_speed / ort:.2f}x")
    for name, s in seconds.items():
        if name.startswith("PT2E"):
            print(f"PT2E int8 / ORT fp32: {batch / s / ort:.2f}x;  PT2E int8 / ORT int8: {batch / s / int8_speed:.2f}x")


def pt2e_int8(model: torch.nn.Module, calibration: torch.Tensor, batch: int) -> Callable:
    """ResNet-50 quantised by PT2E (torchao's X86InductorQuantizer: int8 convolutions with their
    add and ReLU fused, calibrated on `calibration`, for batches of `batch`) and compiled by inductor with freezing, as
    torchao documents it. The quantizer groups nodes by module, and torchvision's Bottleneck calls
    one ReLU module three times, so each block gets one per use; batch norms are folded first."""
    import copy
    import types

    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchvision.models.resnet import Bottleneck

    def fold(parent: torch.nn.Module) -> None:
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            if isinstance(parent._modules[a], torch.nn.Conv2d) and isinstance(parent._modules[b], torch.nn.BatchNorm2d):
                parent._modules[a] = fuse_conv_bn_eval(parent._modules[a], parent._modules[b])
                parent._modules[b] = torch.nn.Identity()
        for child in parent.children():
            fold(child)

    def bottleneck(self, x):  # torchvision's Bottleneck.forward, one ReLU module per use
        out = self.relu_b(self.conv2(self.relu_a(self.conv1(x))))
        return self.relu_c(self.conv3(out) + (x if self.downsample is None else self.downsample(x)))

    model = copy.deepcopy(model).eval()
    fold(model)
    for block in model.modules():
        if isinstance(block, Bottleneck):
            block.relu_a, block.relu_b, block.relu_c = torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.ReLU()
            block.forward = types.MethodType(bottleneck, block)
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    with torch.no_grad():
        prepared = prepare_pt2e(torch.export.export(model, (calibration[:batch],)).module(), quantizer)
        for chunk in calibration.split(batch):  # the exported graph keeps the batch size it was shown
            prepared(chunk)
        compiled = torch.compile(convert_pt2e(prepared))
        with torch._inductor.config.patch(freezing=True):  # compiles now; not left on for the compile runtime's row
            compiled(calibration[:batch])

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return compiled(x)

    return run


def photo_tensors(entry, photos):
    return torch.stack([preprocess(load_image(path), entry.info.preprocess) for path, _ in photos])


def lite_int8(batch: int, rounds: int, photos_limit: int | None) -> None:
    photos = photo_set(photos_limit)
    accepted = [ok for _, ok in photos]
    print(f"\n## EfficientNet-Lite (real weights): speed at batch {batch} on real photos; agreement on {len(photos)} photos")
    print(
        f"{'model':20s} {'torch NCHW':>11s} {'onnx img/s':>10s} {'int8 img/s':>10s} {'int8/onnx':>9s} "
        f"{'int8/torch':>10s} {'agree':>6s} {'acc fp32':>8s} {'acc int8':>8s} {'change':>7s}"
    )
    for n in (0, 1, 2):
        entry = resolve(f"efficientnet_lite{n}")
        reference = make_runtime(entry, "torch", channels_last=False)  # fp32, NCHW: the reference path
        onnx = make_runtime(entry, "onnxruntime")
        int8 = make_runtime(entry, "int8", calibration=CALIBRATION)
        tensors = photo_tensors(entry, photos)
        timed = tensors[: 4 * batch]
        per_batch = lambda b: lambda: [b.probabilities(timed[i : i + batch]) for i in range(0, len(timed), batch)]  # noqa: E731
        seconds = interleaved({"torch": per_batch(reference), "onnx": per_batch(onnx), "int8": per_batch(int8)}, rounds=rounds)
        speed = {k: len(timed) / s for k, s in seconds.items()}
        ref = run_all(reference, tensors, 32)
        q = run_all(int8, tensors, 32)
        acc_ref, acc_q = accuracy(ref, accepted), accuracy(q, accepted)
        print(
            f"{entry.info.name:20s} {speed['torch']:11.1f} {speed['onnx']:10.1f} {speed['int8']:10.1f} "
            f"{speed['int8'] / speed['onnx']:9.2f} {speed['int8'] / speed['torch']:10.2f} "
            f"{top1_agreement(ref, q):6.1%} {acc_ref:8.1%} {acc_q:8.1%} {100 * (acc_q - acc_ref):+6.1f}pp",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--photos", type=int, default=None, help="use this many photos (default: all)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    parser.add_argument("--only", choices=["resnet50", "lite"], help="run one part only")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.only != "lite":
        resnet50_speed(args.batch, args.rounds, not args.no_compile)
    if args.only != "resnet50":
        lite_int8(args.batch, args.rounds, args.photos)
    print(f"\nat the end: {load_average()}")


if __name__ == "__main__":
    main()

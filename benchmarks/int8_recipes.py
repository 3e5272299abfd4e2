"""How close can post-training int8 (ONNX Runtime, static) come to the fp32 reference? Recipes compared.

For one model with real weights (default EfficientNet-Lite0), every photo of ../shared/eval is
classified by the eager fp32 reference and by int8 models built with variants of the shipped recipe
(`topfive.runtime.export.int8_recipe`). Printed per recipe: top-1 agreement with the reference on the photos
*not* used for calibration and on all photos, top-1 accuracy, mean KL divergence of the
probabilities from the reference, and throughput at batch 16 (all recipes timed round-robin in one
run) as a ratio to ONNX Runtime fp32.

Variants: min/max instead of percentile ranges; full 8-bit weights, signed (what the fast u8 x s8
kernels saturate on AVX2 CPUs without VNNI) and unsigned (u8 x u8 kernels, no saturation, slow: an
estimate of what 8-bit weights give where nothing saturates); the same int8 model run with ONNX
Runtime's graph optimisations off (float "fake quantisation": isolates what the integer kernels add);
and mixed precision keeping layers in fp32: the stem and classifier, or the k layers most sensitive
on the calibration photos (each layer quantised alone, KL divergence from fp32). Last, a fallback
that re-runs in fp32 the photos whose int8 answer is a near-tie: the share re-run, the agreement it
would reach and the best speed it could have (no cost counted for the second model).

    PYTHONPATH=src python benchmarks/int8_recipes.py                        # Lite0, ~5 min on 2 cores
    PYTHONPATH=src python benchmarks/int8_recipes.py --model efficientnet_lite2 --keep 6,24
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EVAL, accuracy, interleaved, load, machine, photo_set, top1_agreement  # noqa: E402

from topfive.runtime.backends import make_backend  # noqa: E402
from topfive.runtime.export import calibration_files, int8_recipe, preprocess_for_quantization, quantize_onnx  # noqa: E402
from topfive.predict import Classifier  # noqa: E402


class TensorReader:
    """Calibration photos already preprocessed, one per batch (as export.PhotoCalibrationReader)."""

    def __init__(self, tensors: torch.Tensor):
        self.tensors, self.position = tensors, 0

    def get_next(self):
        if self.position >= len(self.tensors):
            return None
        self.position += 1
        return {"input": self.tensors[self.position - 1 : self.position].numpy()}

    def rewind(self):
        self.position = 0


def session(path: Path, optimise: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def logits(sess, tensors: torch.Tensor, batch: int = 16) -> torch.Tensor:
    return torch.cat(
        [torch.from_numpy(sess.run(None, {"input": tensors[i : i + batch].numpy()})[0]) for i in range(0, len(tensors), batch)]
    )


def kl_divergence(reference: torch.Tensor, other: torch.Tensor) -> float:
    p, q = reference.float().log_softmax(-1), other.float().log_softmax(-1)
    return max(0.0, float((p.exp() * (p - q)).sum(-1).mean()))  # never "-0.0000" from rounding


def weighted_nodes(pre_path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(pre_path)).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--photos", type=int, default=None, help="use this many photos (default: all)")
    parser.add_argument("--calibration", type=int, default=64, help="calibration photos, spread over the set")
    parser.add_argument("--keep", default="6,24", help="mixed precision: keep this many most sensitive layers fp32")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (batch 16, round-robin)")
    args = parser.parse_args()
    from onnxruntime.quantization import CalibrationMethod, QuantType

    print(f"machine: {machine()}")
    photos = photo_set(args.photos)
    paths, accepted = [p for p, _ in photos], [ok for _, ok in photos]
    reference = Classifier(args.model)  # eager fp32 NCHW, full decode
    start = time.perf_counter()
    tensors = torch.stack([reference.prepare(p) for p in paths])
    with torch.inference_mode():
        ref = torch.cat([reference.backend.model(tensors[i : i + 16]) for i in range(0, len(tensors), 16)])
    cal_paths = set(calibration_files(paths, args.calibration))
    cal = torch.tensor([p in cal_paths for p in paths])
    held = ~cal
    print(
        f"{args.model}: {len(paths)} photos from {EVAL}, {int(cal.sum())} of them calibrate the activation ranges, "
        f"{int(held.sum())} held out; reference = eager fp32 ({time.perf_counter() - start:.0f} s)\n"
    )

    fp32 = make_backend(reference.entry, "onnx").path
    work = Path(tempfile.mkdtemp(prefix="topfive-int8-"))
    pre = work / "pre.onnx"
    preprocess_for_quantization(fp32, pre)
    cal_tensors = tensors[cal]

    def build(tag: str, calibrate=CalibrationMethod.Percentile, **overrides) -> Path:
        out = work / f"{tag}.onnx"
        quantize_onnx(
            pre, out, TensorReader(cal_tensors), int8_recipe(calibrate_method=calibrate, **overrides),
            calibration_cache=work / f"ranges-{calibrate.name}.json",
        )
        return out

    nodes = weighted_nodes(pre)
    started = time.perf_counter()
    sensitivity = []
    for node in nodes:  # each weighted layer quantised alone, judged on the calibration photos only
        out = logits(session(build("alone", nodes_to_quantize=[node])), cal_tensors)
        sensitivity.append((kl_divergence(ref[cal], out), node))
    ranked = [node for _, node in sorted(sensitivity, reverse=True)]
    print(
        f"sensitivity of {len(nodes)} weighted layers ({time.perf_counter() - started:.0f} s); most sensitive: "
        + ", ".join(f"{node} ({kl:.3f})" for kl, node in sorted(sensitivity, reverse=True)[:4])
    )

    recipes: dict[str, tuple[Path, bool]] = {"ONNX Runtime fp32 (yardstick)": (fp32, True)}
    shipped = build("shipped")
    recipes["**shipped**: percentile 99.999 ranges, 7-bit per-channel weights"] = (shipped, True)
    recipes["same file, graph optimisations off (float fake-quant)"] = (shipped, False)
    recipes["min/max ranges"] = (build("minmax", calibrate=CalibrationMethod.MinMax), True)
    recipes["8-bit int8 weights (u8 x s8 kernels saturate without VNNI)"] = (build("w8s", reduce_range=False), True)
    recipes["8-bit uint8 weights (u8 x u8 kernels: no saturation, slow)"] = (
        build("w8u", reduce_range=False, weight_type=QuantType.QUInt8),
        True,
    )
    recipes["stem + classifier kept fp32"] = (build("ends", nodes_to_exclude=[nodes[0], nodes[-1]]), True)
    for k in (int(k) for k in args.keep.split(",") if k):
        recipes[f"{k} of {len(nodes)} most sensitive layers kept fp32"] = (
            build(f"keep{k}", nodes_to_exclude=ranked[:k]),
            True,
        )

    sessions = {label: session(path, optimise) for label, (path, optimise) in recipes.items()}
    batch = tensors[:16].numpy()
    timed = {label: (lambda s=s: s.run(None, {"input": batch})) for label, s in sessions.items() if "fake-quant" not in label}
    seconds = interleaved(timed, rounds=args.rounds, warmup=1)
    base = seconds["ONNX Runtime fp32 (yardstick)"]

    print(
        f"\n| recipe ({args.model}) | top-1 agreement, {int(held.sum())} held-out photos | all {len(paths)} | "
        "top-1 accuracy | KL from fp32 | img/s (batch 16) | x fp32 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    ref_acc = accuracy(ref, accepted)
    shipped_out = None
    for label, sess in sessions.items():
        out = logits(sess, tensors)
        agree_held = top1_agreement(ref[held], out[held])
        if label.startswith("**shipped"):
            shipped_out, shipped_label = out, label
        speed = f"{16 / seconds[label]:.1f} | {base / seconds[label]:.2f}" if label in seconds else "- | -"
        print(
            f"| {label} | {agree_held:.1%} ({round(agree_held * int(held.sum()))}) | {top1_agreement(ref, out):.1%} | "
            f"{accuracy(out, accepted):.1%} ({100 * (accuracy(out, accepted) - ref_acc):+.1f} pp) | "
            f"{kl_divergence(ref, out):.4f} | {speed} |",
            flush=True,
        )
    flips = ref.argmax(-1) != shipped_out.argmax(-1)
    probs = ref.softmax(-1).sort(-1, descending=True).values
    margin = probs[:, 0] - probs[:, 1]
    print(
        f"\nreference top-1 {ref_acc:.1%}. Top-1 minus top-2 probability of the reference: under 0.05 on "
        f"{float((margin < 0.05).float().mean()):.1%} of the photos; on the photos the shipped int8 flips, median "
        f"{float(margin[flips].median()):.3f}, largest {float(margin[flips].max()):.3f}."
    )
    # A fallback: re-run in fp32 the photos whose int8 top-1 leads its runner-up by less than t.
    speedup = base / seconds[shipped_label]
    lead = shipped_out.softmax(-1).topk(2, dim=-1).values
    lead = lead[:, 0] - lead[:, 1]
    print(
        f"\n| int8, photos whose int8 lead (top-1 minus top-2) < t re-run in fp32: t | re-run | "
        f"agreement, held-out | all | speed bound vs fp32 (int8 at {speedup:.2f}x: 1 / (1/{speedup:.2f} + re-run)) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for t in (0.05, 0.1, 0.15, 0.2, 0.3):
        rerun = lead < t
        kept = flips & ~rerun
        share = float(rerun.float().mean())
        print(
            f"| {t:.2f} | {share:.0%} | {1 - float(kept[held].float().mean()):.1%} | {1 - float(kept.float().mean()):.1%} | "
            f"{1 / (1 / speedup + share):.2f} |"
        )
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()

"""Measure one model in this fresh process and print one JSON line (the fields: topfive.bench.results).

Run by `topfive.bench.runner` as `python -m topfive.bench.worker '<config json>'`, never imported by
the parent: each model and repeat gets a process of its own, so no figure inherits another model's
memory, caches or thread pools.

How each figure is measured, in this order (it matters for memory: imports and warm-up first, the
things that would disturb the memory figures last):
- baseline: RSS after importing torch/torchvision/topfive and warming the runtime (thread pool,
  CUDA context), before the model exists;
- load: build the model (and read its weights) and the runtime around it -> `rss_load_mib` = peak
  RSS growth over the baseline while loading (includes the state dict's transient copy when real
  weights are read);
- run: `runtime.probabilities(batch)` -- batch-1 latency after warm-up, then throughput at each
  larger batch size (batch size / median batch time; batch 1's is the latency's), each timed until
  its median's 95 % interval is within a few percent (topfive.bench.timing) ->
  `rss_run_mib` = peak RSS growth over the baseline while running (weights + activations +
  inputs); on CUDA `cuda_peak_mib` = `torch.cuda.max_memory_allocated` after
  `reset_peak_memory_stats` over the same passes; CUDA timings are bracketed by
  `torch.cuda.synchronize`; the synthetic inputs are put on the device (in the runtime's memory
  format) before the clock starts;
- peak RSS is the kernel's own high-water mark (VmHWM, reset through /proc/self/clear_refs), or a
  1 ms psutil sampler where that is not available (the JSON's `rss_method` says which);
- GMACs: `torch.utils.flop_counter.FlopCounterMode` on one image, FLOPs / 2 (it counts 2 per
  multiply-accumulate of conv/matmul; elementwise ops are not counted);
- decode / preprocess: median ms per image over real photos with `load_image` and `preprocess`,
  apart from the model; end to end: images/s from files through `Classifier.iter_predict`
  (decoding in worker threads, batch = the largest batch size) around the same runtime object
  that was timed, so its memory format and autocast apply to both.

The runtime is the config's `runtime` (topfive.bench.loading says what each means for each kind of
model). On `torch` a zoo model (or a `python:` hook's torch module) runs around the module built
here: fp32, or autocast at --amp; NCHW, or channels_last with --channels-last. Speed and memory do
not depend on weight values: a model whose weights cannot be had here is built from its
architecture and marked `weights = "architecture only"` in every output, on every runtime; the
worker never downloads weights. A zoo model on a graph runtime is built once before the baseline
(loading.build_untimed: a first use's export or calibration is in no figure), and "auto" is timed as
what it resolved to. Model cards (ONNX, TFLite, OpenVINO IR), and zoo models on a graph runtime,
have their params, GMACs and weight bytes left empty (unknown here), never guessed.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from topfive.bench.loading import AMP, build_untimed, load
from topfive.bench.memory import MIB, PeakRSS, release_free_memory, rss_now
from topfive.bench.timing import make_input, median_interval, percentile, time_boxes, timed_calls
from topfive.machine import environment


def decode_times(photos: list[str], spec) -> tuple[list[float], list[float], list[str]]:
    """Seconds per photo to decode and to preprocess, and the photos that failed (named)."""
    from topfive.decode.images import load_image
    from topfive.transforms import preprocess

    decode_t, prep_t, failures = [], [], []
    if photos:
        load_image(photos[0])  # first call loads Pillow's plugins
    for path in photos:
        t0 = time.perf_counter()
        try:
            img = load_image(path)
        except Exception as e:  # a bad photo is named, the others go on
            failures.append(f"{path}: {e}")
            continue
        t1 = time.perf_counter()
        preprocess(img, spec)
        decode_t.append(t1 - t0)
        prep_t.append(time.perf_counter() - t1)
    return decode_t, prep_t, failures


def measure(config: dict) -> dict:
    started = time.perf_counter()
    import torch
    import torchvision  # noqa: F401  (part of the baseline, as in any real use)

    from topfive import predict  # noqa: F401

    if config.get("offline", True):
        os.environ["TOPFIVE_OFFLINE"] = "1"  # a benchmark never downloads: missing weights -> architecture only
    threads = config.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    device = torch.device(config.get("device", "cpu"))
    boxes = time_boxes(bool(config.get("quick")))
    amp = config.get("amp")
    channels_last = bool(config.get("channels_last"))
    batch_sizes = config.get("batch_sizes", [1])
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    # Warm the runtime (thread pool, CUDA context) so that it lands in the baseline, not the model.
    with torch.inference_mode():
        a = torch.randn(64, 3, 16, 16, device=device)
        torch.nn.functional.conv2d(a, torch.randn(8, 3, 3, 3, device=device)).sum().item()
        del a
    sync()
    calibration = config.get("calibration")
    kind = build_untimed(config["model"], str(device), threads, config.get("runtime", "auto"), calibration,
                         bool(amp or channels_last))
    sync()
    peak = PeakRSS()
    release_free_memory()
    baseline = rss_now()
    peak.reset()

    loaded = load(config["model"], str(device), threads, channels_last, amp, kind, calibration)
    runtime, module = loaded.runtime, loaded.module
    sync()
    load_peak = peak.read()
    release_free_memory()
    loaded_rss = rss_now()

    if module is not None:
        params = sum(p.numel() for p in module.parameters())
        weight_bytes = sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))
        dtype = f"{AMP[amp]} autocast" if amp else "float32"
        channels_last = getattr(runtime, "channels_last", channels_last)
        memory_format = "channels_last" if channels_last else "contiguous"
        target = getattr(runtime, "torch_device", device)
        layout = torch.channels_last if channels_last else torch.contiguous_format

        def prepare(x):
            return x.to(target).contiguous(memory_format=layout)
    else:
        params = weight_bytes = None
        dtype = loaded.spec.dtype
        memory_format = "NHWC" if loaded.spec.layout == "NHWC" else "contiguous"

        def prepare(x):
            return x

    # --- run: batch-1 latency, then throughput at each batch size ---
    peak.reset()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    forward = runtime.probabilities
    lat = timed_calls(forward, prepare(make_input(loaded.spec, 1)), boxes["latency"], sync)
    throughput, batch_runs, throughput_ci = {}, {}, {}
    for bs in batch_sizes:
        if bs == 1:  # the latency calls are batch-1 calls: timing them again would measure the same
            times = lat
        else:
            xb = prepare(make_input(loaded.spec, bs))
            times = timed_calls(forward, xb, boxes["throughput"], sync)
            del xb
        throughput[str(bs)] = bs / statistics.median(times)
        batch_runs[str(bs)] = len(times)
        slow, fast = median_interval(times)
        throughput_ci[str(bs)] = [bs / fast, bs / slow]
    sync()
    run_peak = peak.read()
    cuda_peak = torch.cuda.max_memory_allocated(device) / MIB if cuda else None
    peak.stop()

    # --- GMACs: FlopCounterMode counts 2 FLOPs per multiply-accumulate (conv, matmul, ...) ---
    gmacs = None
    if module is not None:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            module(prepare(make_input(loaded.spec, 1)))
        gmacs = counter.get_total_flops() / 2 / 1e9

    # --- decode and preprocess per image on real photos, apart from the model; then end to end ---
    photos = list(config.get("photos") or [])
    decode_ms = preprocess_ms = end_to_end = None
    decode_t, prep_t, decode_failures = decode_times(photos[: boxes["decode"]], loaded.spec)
    if decode_t:
        decode_ms = statistics.median(decode_t) * 1000
        preprocess_ms = statistics.median(prep_t) * 1000
    if photos:
        from topfive.predict import Classifier

        clf = Classifier.around(runtime, loaded.name, loaded.spec, entry=loaded.entry, batch_size=max(batch_sizes))
        t0 = time.perf_counter()
        results = list(clf.iter_predict(photos[: boxes["e2e"]]))
        sync()
        end_to_end = len(results) / (time.perf_counter() - t0)

    latency_ms = [t * 1000 for t in lat]
    device_text = str(device)
    if cuda:
        device_text = f"{device} ({torch.cuda.get_device_name(device)})"
    return {
        "model": config["model"],
        "canonical": loaded.name,
        "weights": loaded.weights,
        "weights_note": loaded.note,
        "runtime": getattr(runtime, "name", type(runtime).__name__),
        "precision": getattr(runtime, "precision", ""),
        "memory_format": memory_format,
        "params": params,
        "gmacs": gmacs,
        "gmacs_counter": "torch.utils.flop_counter" if gmacs is not None else "",
        "weight_bytes": weight_bytes,
        "device": str(device),
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "latency_ms_median": statistics.median(latency_ms),
        "latency_ms_p90": percentile(latency_ms, 0.9),
        "latency_ms_min": min(latency_ms),
        "latency_ms_max": max(latency_ms),
        "latency_runs": len(latency_ms),
        "latency_ms_ci": list(median_interval(latency_ms)),
        "throughput_img_s": throughput,
        "throughput_runs": batch_runs,
        "throughput_ci": throughput_ci,
        "decode_ms": decode_ms,
        "preprocess_ms": preprocess_ms,
        "end_to_end_img_s": end_to_end,
        "photos_decoded": len(decode_t),
        "photos_end_to_end": len(photos[: boxes["e2e"]]),
        "photo_errors": decode_failures,
        "rss_baseline_mib": baseline / MIB,
        "rss_load_mib": (load_peak - baseline) / MIB,
        "rss_loaded_mib": (loaded_rss - baseline) / MIB,
        "rss_run_mib": (run_peak - baseline) / MIB,
        "rss_method": peak.method,
        "cuda_peak_mib": cuda_peak,
        "environment": environment(device_text, torch.get_num_threads(), dtype, memory_format),
        "pid": os.getpid(),
        "wall_s": time.perf_counter() - started,
        "error": "",
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Only the result goes to the real stdout; anything else (library chatter) goes to stderr.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        result = measure(json.loads(argv[0]))
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}", "pid": os.getpid()}
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()
    return 0 if not result.get("error") else 1


if __name__ == "__main__":
    sys.exit(main())

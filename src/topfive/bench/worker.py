"""Measure one model in this fresh process and print one JSON line (the fields: see bench.py).

Run by `topfive.bench.runner` as `python -m topfive.bench.worker '<config json>'`, never imported by the
parent. The order matters for memory: imports and runtime warm-up first (the baseline), then the
model load (peak RSS growth while loading), then the timed passes (peak RSS growth while running,
CUDA peak), and only then the things that would disturb those figures: the GMAC count, decoding
real photos and the end-to-end run.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time

MIB = 1024 * 1024

# Time boxes: (warm-up reps, warm-up seconds, min reps, budget seconds, hard cap seconds).
FULL = {"latency": (5, 1.0, 20, 3.0, 20.0), "throughput": (2, 1.0, 3, 3.0, 20.0), "decode": 32, "e2e": 64}
QUICK = {"latency": (1, 0.2, 3, 0.2, 2.0), "throughput": (1, 0.2, 1, 0.2, 2.0), "decode": 4, "e2e": 8}


# --- memory ---------------------------------------------------------------------------------


def rss_now() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's malloc_trim), so that a
    phase's RSS growth is what it needs, not less because it reuses pages an earlier phase freed."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


class PeakRSS:
    """Peak resident set size since the last `reset()`.

    On Linux the kernel keeps the peak itself (VmHWM) and lets a process reset it by writing "5"
    to /proc/self/clear_refs: exact, no sampling. Elsewhere (or where that file is not writable)
    a thread samples psutil's RSS every millisecond, which can miss a spike shorter than that.
    `ru_maxrss` cannot be reset, so it would hide any peak lower than the import-time one.
    """

    def __init__(self):
        self.method = "VmHWM reset via /proc/self/clear_refs"
        try:
            self._clear()
            self._hwm()
        except OSError:
            self.method = "psutil RSS sampled every 1 ms"
        self._peak = 0
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def _clear():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    @staticmethod
    def _hwm() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def _sample(self):
        while not self._stop.wait(0.001):
            self._peak = max(self._peak, rss_now())

    def reset(self) -> None:
        release_free_memory()
        if self.method.startswith("VmHWM"):
            self._clear()
            return
        self.stop()
        self._peak = rss_now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def read(self) -> int:
        if self.method.startswith("VmHWM"):
            return self._hwm()
        return max(self._peak, rss_now())

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


# --- environment ----------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device, dtype: str, memory_format: str) -> dict:
    import torch
    import torchvision

    device_text = str(device)
    if device.type == "cuda":
        device_text = f"{device} ({torch.cuda.get_device_name(device)})"
    return {
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical CPUs)",
        "threads": torch.get_num_threads(),
        "device": device_text,
        "dtype": dtype,
        "memory_format": memory_format,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --- loading --------------------------------------------------------------------------------


class Loaded:
    """What was loaded: an nn.Module (params, GMACs known) or only a Backend (they are not)."""

    def __init__(self, name, spec, weights, module=None, backend=None, entry=None, note=""):
        self.name, self.spec, self.weights = name, spec, weights
        self.module, self.backend, self.entry, self.note = module, backend, entry, note


# What ModelEntry.build raises for an entry without a torch module (cards.py raises TypeError).
NOT_A_MODULE = (NotImplementedError, AttributeError, TypeError)


def _python_hook(name: str):
    """`python:package.module:function` -> what the function returns: an nn.Module, a Backend
    (anything with `probabilities(batch)`) or a ModelEntry. For tests and for measuring one's own
    model; the module must be importable (PYTHONPATH is passed on to the worker)."""
    import importlib

    _, module_name, function = name.split(":", 2)
    return getattr(importlib.import_module(module_name), function)()


def load(name: str, device, threads: int | None = None) -> Loaded:
    import torch

    from topfive.transforms import PreprocessSpec
    from topfive.models.weights import WeightsUnavailable
    from topfive.models.zoo import ModelEntry, resolve

    entry = _python_hook(name) if name.startswith("python:") else resolve(name)
    if not isinstance(entry, ModelEntry):
        spec = getattr(entry, "preprocess_spec", None) or PreprocessSpec(size=224, resize=256)
        if isinstance(entry, torch.nn.Module):
            return Loaded(name, spec, "user code", module=entry.eval().to(device))
        return Loaded(name, spec, "user code", backend=entry)
    spec = entry.info.preprocess
    # Speed and memory do not depend on weight values: without weights here the architecture is
    # measured, and the row says so in every output. Asking first avoids building the model twice
    # (a torchvision build makes the architecture before it looks for the weights).
    try:
        status = entry.weights_status()
    except (NotImplementedError, AttributeError):
        status = None
    module, weights, note = None, "real", ""
    if status == "download":
        weights, note = "architecture only", f"weights for {entry.info.name} are not here (they need a download)"
    else:
        try:
            module = entry.build(pretrained=True)
        except WeightsUnavailable as e:
            weights, note = "architecture only", str(e)
        except NOT_A_MODULE:
            # Not a torch model (a model card: ONNX, TFLite, OpenVINO): time its Backend, with the
            # same thread count where the runtime takes one.
            import inspect

            kwargs = {"device": str(device)}
            if threads and "threads" in inspect.signature(entry.load_backend).parameters:
                kwargs["threads"] = threads
            backend = entry.load_backend(**kwargs)
            return Loaded(entry.info.name, spec, "real", backend=backend, entry=entry)
    if module is None:
        release_free_memory()  # outside the except block: its traceback no longer pins a first build
        try:
            module = entry.build(pretrained=False)
        except NOT_A_MODULE:
            raise WeightsUnavailable(f"{note}; it has no torch architecture to measure instead") from None
    return Loaded(entry.info.name, spec, weights, module=module.eval().to(device), entry=entry, note=note)


# --- timing ---------------------------------------------------------------------------------


def timed_calls(fn, x, box, sync) -> list[float]:
    """Seconds per call after warm-up; stops once it has `min_reps` and `budget` seconds, or at the cap."""
    warm_reps, warm_s, min_reps, budget, cap = box
    start = time.perf_counter()
    for i in range(warm_reps):
        fn(x)
        sync()
        if time.perf_counter() - start > warm_s:
            break
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        fn(x)
        sync()
        times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        if (len(times) >= min_reps and elapsed >= budget) or (elapsed >= cap and len(times) >= 1):
            return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def make_input(spec, batch: int):
    """Synthetic input of the model's shape and dtype: speed does not depend on pixel values."""
    import torch

    g = torch.Generator().manual_seed(0)
    shape = (batch, 3, spec.size, spec.size) if spec.layout == "NCHW" else (batch, spec.size, spec.size, 3)
    if spec.dtype == "uint8":
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    return torch.randn(shape, generator=g)


def make_classifier(loaded: Loaded, device, batch_size: int):
    """A Classifier around the model already loaded (a second copy would disturb the memory figures)."""
    from topfive.runtime.backends import TorchBackend
    from topfive.predict import Classifier

    backend = loaded.backend or TorchBackend(loaded.module, device=str(device))
    return Classifier.around(backend, loaded.name, loaded.spec, entry=loaded.entry, batch_size=batch_size)


# --- the measurement ------------------------------------------------------------------------


def measure(config: dict) -> dict:
    started = time.perf_counter()
    import torch
    import torchvision  # noqa: F401  (part of the baseline, as in any real use)

    from topfive import predict  # noqa: F401
    from topfive.decode.images import load_image
    from topfive.transforms import preprocess

    if config.get("offline", True):
        os.environ["TOPFIVE_OFFLINE"] = "1"  # a benchmark never downloads: missing weights -> architecture only
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    device = torch.device(config.get("device", "cpu"))
    quick = QUICK if config.get("quick") else FULL
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[config.get("amp")]
    channels_last = bool(config.get("channels_last"))
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
    peak = PeakRSS()
    release_free_memory()
    baseline = rss_now()
    peak.reset()

    loaded = load(config["model"], device, config.get("threads"))
    model = loaded.module
    if model is not None and channels_last:
        model = model.to(memory_format=torch.channels_last)
    sync()
    load_peak = peak.read()
    release_free_memory()
    loaded_rss = rss_now()

    if model is not None:
        params = sum(p.numel() for p in model.parameters())
        weight_bytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
        dtype = f"{amp} autocast".replace("torch.", "") if amp else "float32"
        memory_format = "channels_last" if channels_last else "contiguous"

        @contextlib.contextmanager
        def running():
            with torch.inference_mode(), (torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()):
                yield

        def prepare(x):
            x = x.to(device)
            return x.contiguous(memory_format=torch.channels_last) if channels_last else x

        forward = model
    else:
        params = weight_bytes = None
        dtype = loaded.spec.dtype
        memory_format = "NHWC" if loaded.spec.layout == "NHWC" else "contiguous"
        running = contextlib.nullcontext

        def prepare(x):
            return x

        forward = loaded.backend.probabilities

    # --- run: batch-1 latency, then throughput at each batch size ---
    peak.reset()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    with running():
        x1 = prepare(make_input(loaded.spec, 1))
        lat = timed_calls(forward, x1, quick["latency"], sync)
        throughput, batch_runs = {}, {}
        for bs in config.get("batch_sizes", [1]):
            xb = prepare(make_input(loaded.spec, bs))
            times = timed_calls(forward, xb, quick["throughput"], sync)
            throughput[str(bs)] = bs / statistics.median(times)
            batch_runs[str(bs)] = len(times)
            del xb
    sync()
    run_peak = peak.read()
    cuda_peak = torch.cuda.max_memory_allocated(device) / MIB if cuda else None
    peak.stop()

    # --- GMACs: FlopCounterMode counts 2 FLOPs per multiply-accumulate (conv, matmul, ...) ---
    gmacs = None
    if model is not None:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            model(prepare(make_input(loaded.spec, 1)))
        gmacs = counter.get_total_flops() / 2 / 1e9

    # --- decode and preprocess per image on real photos, apart from the model ---
    photos = list(config.get("photos") or [])
    decode_ms = preprocess_ms = end_to_end = None
    decode_failures = []
    if photos:
        decode_t, prep_t = [], []
        load_image(photos[0])  # first call loads Pillow's plugins
        for path in photos[: quick["decode"]]:
            t0 = time.perf_counter()
            try:
                img = load_image(path)
            except Exception as e:  # a bad photo is named, the others go on
                decode_failures.append(f"{path}: {e}")
                continue
            t1 = time.perf_counter()
            preprocess(img, loaded.spec)
            decode_t.append(t1 - t0)
            prep_t.append(time.perf_counter() - t1)
        if decode_t:
            decode_ms = statistics.median(decode_t) * 1000
            preprocess_ms = statistics.median(prep_t) * 1000

        # --- end to end from files through the library's own path ---
        e2e_photos = photos[: quick["e2e"]]
        clf = make_classifier(loaded, device, max(config.get("batch_sizes", [1])))
        with running():
            t0 = time.perf_counter()
            results = list(clf.iter_predict(e2e_photos))
            sync()
            end_to_end = len(results) / (time.perf_counter() - t0)

    latency_ms = [t * 1000 for t in lat]
    return {
        "model": config["model"],
        "canonical": loaded.name,
        "weights": loaded.weights,
        "weights_note": loaded.note,
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
        "throughput_img_s": throughput,
        "throughput_runs": batch_runs,
        "decode_ms": decode_ms,
        "preprocess_ms": preprocess_ms,
        "end_to_end_img_s": end_to_end,
        "photos_decoded": len(photos[: quick["decode"]]) - len(decode_failures) if photos else 0,
        "photos_end_to_end": len(photos[: quick["e2e"]]) if photos else 0,
        "photo_errors": decode_failures,
        "rss_baseline_mib": baseline / MIB,
        "rss_load_mib": (load_peak - baseline) / MIB,
        "rss_loaded_mib": (loaded_rss - baseline) / MIB,
        "rss_run_mib": (run_peak - baseline) / MIB,
        "rss_method": peak.method,
        "cuda_peak_mib": cuda_peak,
        "environment": environment(device, dtype, memory_format),
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

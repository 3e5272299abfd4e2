"""What machine a figure was measured on: the CPU, the packages, the settings, as plain text.

Nothing here imports torch: `topfive bench` describes the machine even when no worker process got
far enough to do so itself, and benchmark scripts print the same words.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU features that change the speed or the numerics of a runtime (int8 kernels without VNNI
# saturate; OpenVINO picks bf16 where avx512_bf16 or AMX exists).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def isa_flags() -> tuple[str, ...]:
    """Which of ISA_FLAGS this CPU has (read from /proc/cpuinfo; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return tuple(flag for flag in ISA_FLAGS if flag in present)
    except OSError:
        pass
    return ()


def cpu_description() -> str:
    """E.g. "AMD EPYC 7B13 (2 logical CPUs)"."""
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs)"


def package_version(name: str) -> str:
    """The installed version of a distribution, "" when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def load_average() -> str:
    """How busy the machine was: absolute speeds on a shared machine depend on it."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:  # not available on this platform
        return "load average unknown"
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def environment(device: str, threads, dtype: str, memory_format: str) -> dict:
    """The environment record of a bench result: {"cpu", "threads", "device", "dtype",
    "memory_format", "torch", "torchvision", "python", "platform"}."""
    return {
        "cpu": cpu_description(),
        "threads": threads,
        "device": device,
        "dtype": dtype,
        "memory_format": memory_format,
        "torch": package_version("torch"),
        "torchvision": package_version("torchvision"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


RUNTIME_PACKAGES = ("torch", "torchvision", "onnxruntime", "openvino", "ai-edge-litert", "pillow", "numpy")


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


@functools.cache
def gpu() -> str:
    """The GPUs and driver (from nvidia-smi), "" where there is none. nvidia-smi rather than torch,
    so describing the machine loads no CUDA."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return "; ".join(line.strip() for line in out.splitlines() if line.strip())


def fingerprint(threads: int | None = None) -> dict:
    """What a figure depends on besides the code: the CPU (model, the ISA features that change speed
    or numerics, cores), the threads used, memory, OS, Python, the runtime packages' versions and
    the GPU with its driver. Stored with every result; results are reused only where it matches."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_name(),
        "isa": list(isa_flags()),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "threads": threads,
        "memory_bytes": memory_bytes(),
        "os": f"{platform.system()} {platform.machine()} {' '.join(platform.libc_ver())}".strip(),
        "platform": platform.platform(),  # with the kernel build: recorded, not matched (see differences)
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in RUNTIME_PACKAGES},
        "gpu": gpu(),
    }


def fingerprint_key(fp: dict) -> str:
    """A short hash of a fingerprint, for cache keys and file names."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


NOT_MATCHED = ("platform",)  # a kernel update changes neither speed nor numerics enough to re-measure


def differences(recorded: dict, current: dict) -> list[str]:
    """The fields in which two fingerprints differ, as "field: recorded -> current" (empty: the same
    machine for reusing results; NOT_MATCHED fields are left out)."""
    out = []
    for key in sorted((set(recorded) | set(current)) - set(NOT_MATCHED)):
        a, b = recorded.get(key), current.get(key)
        if key == "packages" and isinstance(a, dict) and isinstance(b, dict):
            out += [f"{name}: {a.get(name) or '-'} -> {b.get(name) or '-'}"
                    for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
        elif a != b:
            out.append(f"{key}: {a} -> {b}")
    return out

"""What machine a figure was measured on: the CPU, the packages, the settings, as plain text.

Nothing here imports torch: `topfive bench` describes the machine even when no worker process got
far enough to do so itself, and benchmark scripts print the same words.
"""

from __future__ import annotations

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

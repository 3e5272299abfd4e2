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

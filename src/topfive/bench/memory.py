"""Resident memory of this process: now, at its peak since a reset, and freed pages handed back."""

from __future__ import annotations

import gc
import threading

MIB = 1024 * 1024


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

    @property
    def exact(self) -> bool:
        return self.method.startswith("VmHWM")

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
        if self.exact:
            self._clear()
            return
        self.stop()
        self._peak = rss_now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def read(self) -> int:
        if self.exact:
            return self._hwm()
        return max(self._peak, rss_now())

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

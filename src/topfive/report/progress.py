"""The study's one progress display: a line per finished run with the stage, how far it is, the
run's own line and the time left in the stage."""

from __future__ import annotations

import sys
import time
from typing import Callable


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class StageProgress:
    """Called with each finished run's line (evaluate's log, bench's progress). The time left is the
    mean time per run so far times the runs still to go: runs differ, so it is an estimate that
    sharpens as the stage goes on."""

    def __init__(self, stage: str, total: int, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None):
        self.stage, self.total, self.clock = stage, max(1, total), clock
        self.write = write or (lambda text: print(text, file=sys.stderr, flush=True))
        self.started = clock()
        self.done = 0

    def __call__(self, line: str) -> None:
        self.done = min(self.done + 1, self.total)
        elapsed = self.clock() - self.started
        left = elapsed / self.done * (self.total - self.done)
        when = "stage done" if self.done == self.total else f"about {duration(left)} left in {self.stage}"
        self.write(f"topfive report: {self.stage} {self.done}/{self.total}, {duration(elapsed)}, {when}: {line}")

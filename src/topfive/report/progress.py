"""The study's one progress display: a line per finished run with the stage, how far it is, the
run's own line, and the time left in the stage and in the whole study."""

from __future__ import annotations

import sys
import time
from typing import Callable

# Seconds per run of each stage on a 2-core CPU, for the time left in stages not started yet; a
# study that has run once on this machine uses its own figures (study.json's "seconds_per_run").
TYPICAL_SECONDS_PER_RUN = {"evaluate": 8.0, "bench": 10.0, "robustness": 5.0}


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def expected_seconds(runs: dict[str, int], measured: dict[str, float] | None = None) -> float:
    """Seconds that `runs` ({stage: runs to do}) should take: this machine's figures where known."""
    measured = measured or {}
    return sum(n * measured.get(stage, TYPICAL_SECONDS_PER_RUN.get(stage, 10.0)) for stage, n in runs.items())


class StageProgress:
    """Called with each finished run's line (evaluate's log, bench's progress). The time left in the
    stage is the mean time per run so far times the runs still to go: runs differ, so it is an
    estimate that sharpens as the stage goes on. `later`: seconds expected for the stages after
    this one; with it, each line also gives the time left in the whole study."""

    def __init__(self, stage: str, total: int, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None, later: float = 0.0):
        self.stage, self.total, self.clock, self.later = stage, max(1, total), clock, later
        self.write = write or (lambda text: print(text, file=sys.stderr, flush=True))
        self.started = clock()
        self.done = 0

    @property
    def seconds_per_run(self) -> float | None:
        return (self.clock() - self.started) / self.done if self.done else None

    def __call__(self, line: str) -> None:
        self.done = min(self.done + 1, self.total)
        elapsed = self.clock() - self.started
        left = elapsed / self.done * (self.total - self.done)
        when = "stage done" if self.done == self.total else f"about {duration(left)} left in {self.stage}"
        if self.later > 0:
            when += f", about {duration(left + self.later)} in the study"
        self.write(f"topfive report: {self.stage} {self.done}/{self.total}, {duration(elapsed)}, {when}: {line}")

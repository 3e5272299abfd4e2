"""`topfive bench`: speed and memory of models, each model and repeat in a fresh process.

    runner   run_bench: one worker process per model and repeat, the repeats combined, their spread
    worker   the measurement inside that process, and how each figure is measured
    loading  the model on the runtime that is timed (load)
    results  the result files (bench.csv, bench.json: their contract) and the terminal table
    memory   resident memory now and at its peak
    timing   time boxes, timed repetitions, synthetic inputs

The worker is not imported here: it runs as `python -m topfive.bench.worker`.
"""

from topfive.bench.loading import Loaded, load
from topfive.bench.memory import PeakRSS, release_free_memory, rss_now
from topfive.bench.results import columns, csv_row, render_table, summary, write_results
from topfive.bench.runner import combine, fallback_environment, pick_photos, run_bench, run_worker, worker_env

__all__ = [
    "Loaded", "PeakRSS", "columns", "combine", "csv_row", "fallback_environment", "load", "pick_photos",
    "release_free_memory", "render_table", "rss_now", "run_bench", "run_worker", "summary", "worker_env",
    "write_results",
]

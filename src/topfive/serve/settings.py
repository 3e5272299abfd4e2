"""What the server is told at start-up: its limits, its batching and where the study report is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """`max_upload_bytes`: the largest request body taken (413 beyond). `upload_timeout_s`: the most
    time a body may take to arrive (408 beyond). `max_uploads`: bodies being received at once (503
    beyond), each holding up to twice `max_upload_bytes` for a moment. `max_pending`:
    requests admitted to the models at once, once their body is in (503 beyond), each holding its
    decoded pixels (and its photo's bytes while they are decoded) until every model has answered:
    an 89-megapixel photo (the decoder's limit) is ~270 MB of RGB. Together they bound the memory.
    `batch_window_s`: how long a model's worker waits for more requests after the first one
    arrives before it runs the batch (it never waits when the batch is already full).
    `report_dir`: the study report folder shown by /report (None: no report view).
    `draft_size`: decode JPEGs at a reduced DCT scale keeping both sides >= this (None: full decode);
    the photo is decoded once for every model, so it is the largest draft size of the models."""

    max_upload_bytes: int = 20 * MB
    max_pending: int = 16
    max_uploads: int = 32
    upload_timeout_s: float = 60.0
    batch_window_s: float = 0.005
    max_top_k: int = 1000
    report_dir: Path | None = None
    draft_size: int | None = None

    def __post_init__(self):
        if min(self.max_upload_bytes, self.max_pending, self.max_uploads) < 1 or self.upload_timeout_s <= 0:
            raise ValueError("max_upload_bytes, max_pending, max_uploads and upload_timeout_s must be positive")
        if self.batch_window_s < 0:
            raise ValueError("batch_window_s must not be negative")

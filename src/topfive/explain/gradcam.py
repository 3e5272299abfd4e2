"""Grad-CAM heat maps with pytorch_grad_cam (PyPI `grad-cam`), on the input the model classifies.

The model is loaded as `topfive.Classifier(name, runtime="torch")` and the photo goes through that
classifier's own decoder and preprocessing, so the heat map is over exactly the square the model
sees (`Explanation.heat`); `topfive.explain.overlay` puts it back on the photo.
"""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from topfive.decode.images import ImageSource, describe, load_image
from topfive.explain.layers import rule_for, target_layer
from topfive.imagenet import classes
from topfive.models import resolve
from topfive.predict import Classifier
from topfive.transforms import PreprocessSpec


class NoGradients(ValueError):
    """A model topfive cannot take gradients of: a model card (ONNX, TFLite, OpenVINO IR) or int8."""


@dataclass(frozen=True, eq=False)  # eq would compare the arrays and images field by field
class Explanation:
    """A Grad-CAM heat map of one photo for one class. `heat` is (size, size) in [0, 1] over the
    model's input square; `image` is the upright photo (EXIF orientation applied) it came from."""

    source: str
    model: str
    layer: str  # the target layer's path in the module, e.g. "layer4[-1]"
    class_index: int
    class_name: str
    probability: float  # the model's probability of that class on this photo
    top1_index: int  # the model's own top-1 (class_index unless another class was asked for)
    heat: np.ndarray
    image: Image.Image
    spec: PreprocessSpec


def gradient_problem(model: str, runtime: str = "torch") -> str | None:
    """None where Grad-CAM can run `model`, else why not ("no gradients: onnx model")."""
    if runtime == "int8":
        return "no gradients: int8 model"
    entry = resolve(model)
    if not entry.has_module:
        return f"no gradients: {entry.info.family} model"
    return None


def parse_class(text: str | int) -> int:
    """An ImageNet-1k class from its index (0..999), WordNet id or name (any case); ValueError naming
    close names otherwise."""
    table = classes()
    word = str(text).strip()
    if word.lstrip("-").isdigit():
        if not 0 <= int(word) < len(table):
            raise ValueError(f"class index {word} is outside 0..{len(table) - 1}")
        return int(word)
    key = word.lower().replace("_", " ")
    for c in table:
        if key in (c.name.lower(), c.wnid):
            return c.index
    close = difflib.get_close_matches(key, [c.name.lower() for c in table], n=4)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `topfive labels explain NAME` lists classes"
    raise ValueError(f"unknown ImageNet-1k class {word!r}{hint}")


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set to `threads` inside the block (None: unchanged)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads:
            torch.set_num_threads(before)


class Explainer:
    """Grad-CAM for one model, loaded once: `explain(photo, class_index=None)` -> Explanation for
    the model's top-1 or the class given. Use as a context manager (or call close()) to remove
    the hooks from the module."""

    def __init__(self, model: str, device: str = "cpu", weights_file: str | None = None, threads: int | None = 1):
        """`threads`: torch's intra-op threads while explaining (restored after; None: leave torch's
        own). One by default: for one image a second thread saved a quarter of the time on an idle
        CPU, and on a CPU busy with other work it made the pass up to 40x slower (docs/explain.md)."""
        try:
            from pytorch_grad_cam import GradCAM
        except ImportError as e:
            raise ImportError(f"Grad-CAM needs the grad-cam package: pip install 'topfive[explain]' ({e})") from e
        problem = gradient_problem(model)
        if problem is not None:
            raise NoGradients(f"{model}: {problem}; Grad-CAM needs a PyTorch model (see `topfive models`)")
        entry = resolve(model)
        rule_for(entry.info.architecture)  # an architecture without a rule fails before its weights load
        self.classifier = Classifier(model, runtime="torch", device=device, weights_file=weights_file, batch_size=1)
        self.runtime = self.classifier.runtime
        # Grad-CAM needs gradients of activations only; the input that requires them keeps the graph,
        # and skipping the weights' gradients took ~40 % off the forward + backward pass (docs/explain.md)
        self.runtime.module.requires_grad_(False)
        layer, self.layer = target_layer(entry.info.architecture, self.runtime.module)
        self.cam = GradCAM(model=self.runtime.module, target_layers=[layer])
        self.threads = threads

    @property
    def name(self) -> str:
        return self.classifier.name

    def explain(self, photo: ImageSource, class_index: int | None = None, source: str | None = None) -> Explanation:
        """Raises the photo's ImageError (ImageNotFound, CorruptImage, ...) when it cannot be read.
        `source` names the photo in the Explanation (default: the path, or what `photo` is)."""
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        if class_index is not None and not 0 <= class_index < len(classes()):
            raise ValueError(f"class index {class_index} is outside 0..{len(classes()) - 1}")
        image = load_image(photo)
        x = self.runtime.input(self.classifier.prepare(image).unsqueeze(0)).requires_grad_(True)
        targets = None if class_index is None else [ClassifierOutputTarget(class_index)]
        with torch_threads(self.threads):
            heat = self.cam(input_tensor=x, targets=targets)[0]
        probs = self.cam.outputs.detach().float().softmax(dim=-1)[0].cpu()
        self.cam.activations_and_grads.clear()
        top1 = int(probs.argmax())
        index = top1 if class_index is None else class_index
        return Explanation(
            source=source or describe(photo), model=self.name, layer=self.layer, class_index=index,
            class_name=classes()[index].name, probability=float(probs[index]), top1_index=top1,
            heat=np.asarray(heat, dtype=np.float32), image=image, spec=self.classifier.spec,
        )

    def close(self) -> None:
        self.cam.activations_and_grads.release()

    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


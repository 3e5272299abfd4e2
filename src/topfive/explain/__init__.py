"""Grad-CAM explanations: where in the photo a model looked for a class (pytorch_grad_cam).

    layers   the target layer per architecture family (the last conv feature map); NoTargetLayer
    gradcam  Explainer: a model loaded once -> Explanation (heat map over its input square); NoGradients
    overlay  the heat map put back on the photo at the photo's own size, and saved as an image

Names are imported on first use, so that importing the package loads no torch.
"""

from topfive.lazy import lazy_exports

_EXPORTS = {
    "Explainer": "gradcam",
    "Explanation": "gradcam",
    "NoGradients": "gradcam",
    "gradient_problem": "gradcam",
    "parse_class": "gradcam",
    "NoTargetLayer": "layers",
    "target_layer": "layers",
    "overlay_image": "overlay",
    "save_image": "overlay",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports("topfive.explain", _EXPORTS)

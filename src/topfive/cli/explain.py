"""`topfive explain`: a photo with the Grad-CAM heat map of a model's top-1, or of a class named."""

from __future__ import annotations

from pathlib import Path

from topfive.cli.common import DEFAULT_MODEL, fail


def add_parser(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="Grad-CAM heat map of a photo for a model's top-1 (or a class)",
        description="Write the photo, at its own size, with a Grad-CAM heat map of where the model found its "
        "top-1 class (or the --class given). The part of the photo outside the model's centre crop is drawn "
        "dimmed: the model never saw it. PyTorch models only (the zoo and EfficientNet-Lite); model cards "
        "(ONNX, TFLite, OpenVINO IR) and int8 have no gradients here.",
    )
    p.add_argument("photo", metavar="PHOTO", help="the image file")
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help="model name (default: %(default)s; see `topfive models`)")
    p.add_argument("--class", dest="target", metavar="INDEX|NAME",
                   help="the ImageNet-1k class to explain: index 0..999, WordNet id or name (default: the top-1)")
    p.add_argument("--out", "-o", required=True, metavar="FILE", help="the overlay to write (.png, .jpg or .webp)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--weights-file", help="a local state dict to load instead of the published weights")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads for the heat map (default: 1; for one image more saved little, see docs/explain.md)")
    p.set_defaults(run=run)


def run(args) -> int:
    from topfive.decode.images import ImageError, load_image
    from topfive.explain.gradcam import Explainer, parse_class
    from topfive.explain.overlay import FORMATS, overlay_image, save_image
    from topfive.imagenet import classes
    from topfive.output import shown

    out = Path(args.out)
    if out.suffix.lower() not in FORMATS:
        return fail(f"--out {args.out}: unknown image suffix {out.suffix!r}; use one of {', '.join(FORMATS)}")
    try:
        target = None if args.target is None else parse_class(args.target)
    except ValueError as e:
        return fail(f"--class: {e}")
    try:  # before the model loads, which takes seconds
        image = load_image(args.photo)
    except ImageError as e:
        fail(f"{shown(e.source)}: {shown(e.reason)}")
        return 1
    try:
        explainer = Explainer(args.model, device=args.device, weights_file=args.weights_file, threads=args.threads)
    except Exception as e:  # unknown model, no gradients, no target layer, weights not available
        return fail(f"{args.model}: {e}")
    with explainer:
        explanation = explainer.explain(image, class_index=target, source=args.photo)
    try:
        save_image(overlay_image(explanation), out)
    except OSError as e:
        return fail(f"cannot write {shown(str(out))}: {e.strerror or e}")
    e = explanation
    own = "its top-1" if e.class_index == e.top1_index else f"its top-1: {e.top1_index} {classes()[e.top1_index].name}"
    print(f"{shown(str(out))}: {e.model}, class {e.class_index} {e.class_name} (p={e.probability:.3f}; {own}), "
          f"Grad-CAM at {e.layer}, {e.image.width}x{e.image.height}")
    return 0

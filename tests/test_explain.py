"""Grad-CAM explanations: the target layer of each architecture family (random weights), the heat map
on real weights (EfficientNet-Lite0) and real photos, the overlay at the photo's size, the CLI and
the gallery's overlays."""

import re

import numpy as np
import pytest
import torch
from conftest import EVAL
from PIL import Image

from topfive.cli import main
from topfive.decode.images import load_image
from topfive.explain.gradcam import Explainer, gradient_problem, parse_class, torch_threads
from topfive.explain.layers import NoTargetLayer, rule_for, target_layer
from topfive.explain.overlay import crop_box, heat_on_photo, overlay_image, save_image
from topfive.models import resolve
from topfive.models.torchvision_models import architectures, imagenet_weights
from topfive.transforms import PreprocessSpec

CAR = EVAL / "images/sports_car/stanfordcars_sports_car_sc_00809.jpg"
ELEPHANT = EVAL / "images/elephant/a10_elefante_0087f10a.jpg"
GUITAR = EVAL / "images/guitar/bing_guitare_0017.jpg"
CARD = "mobilenet_v1_0.25_128_quant"  # a shipped TFLite card

# (architecture, side of the map at a 160-pixel input): one per family topfive's zoo lists. 160
# rather than 224 keeps the forward and backward passes cheap; the map's side is 160 over the
# family's stride (32; 16 for AlexNet, VGG and SqueezeNet, whose target is before the last max-pool),
# rounded up; Inception v3's unpadded convolutions leave 3
SIDE = 160
FAMILIES = [
    ("resnet18", 5), ("googlenet", 5), ("inception_v3", 3), ("alexnet", 9), ("vgg11_bn", 10),
    ("squeezenet1_1", 9), ("densenet121", 5), ("mobilenet_v2", 5), ("mobilenet_v3_small", 5), ("mnasnet0_5", 5),
    ("efficientnet_b0", 5), ("shufflenet_v2_x0_5", 5), ("regnet_x_400mf", 5), ("convnext_tiny", 5),
    ("efficientnet_lite0", 5),
]
CONV_LIKE = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Hardswish)


@pytest.fixture(scope="session")
def explainer():
    with Explainer("efficientnet_lite0") as ex:
        yield ex


@pytest.fixture
def one_thread():
    """As Explainer runs (see its `threads`)."""
    with torch_threads(1):
        yield


def canvas(parts, size=448) -> Image.Image:
    """A grey square with each (photo, side) pasted at that side, inside the model's centre crop."""
    img = Image.new("RGB", (size, size), (128, 128, 128))
    for path, side in parts:
        photo = load_image(path)
        photo.thumbnail((190, 190))
        img.paste(photo, (30 if side == "left" else size - 30 - photo.width, (size - photo.height) // 2))
    return img


def left_share(explanation) -> float:
    heat, _ = heat_on_photo(explanation.heat, explanation.image.size, explanation.spec)
    return float(heat[:, : heat.shape[1] // 2].sum() / heat.sum())


def test_every_zoo_architecture_has_a_layer_or_a_clear_refusal():
    names = [a for a in architectures() if imagenet_weights(a)] + ["efficientnet_lite0", "efficientnet_lite2"]
    refused = []
    for name in names:
        try:
            rule_for(name)
        except NoTargetLayer as e:
            assert "vision transformer" in str(e)
            refused.append(name)
    assert refused and all(re.match(r"(vit|swin|maxvit)_", n) for n in refused)
    with pytest.raises(NoTargetLayer, match="no Grad-CAM target layer is known"):
        rule_for("not_a_net")


@pytest.mark.parametrize("arch,cells", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family_target_layer_is_the_last_conv_map(arch, cells, one_thread):
    """Random weights (no download): the layer is conv-type, its output a 4-D map of the expected
    size that the class score's gradient reaches, and Grad-CAM through it gives a heat map over the
    input (its values mean nothing with random weights)."""
    from pytorch_grad_cam import GradCAM

    torch.manual_seed(0)
    model = resolve(arch).build(pretrained=False).eval().requires_grad_(False)  # as Explainer runs it
    layer, path = target_layer(arch, model)
    assert isinstance(layer, CONV_LIKE) or any(isinstance(m, torch.nn.Conv2d) for m in layer.modules()), path
    seen = []
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    x = torch.randn(1, 3, SIDE, SIDE)
    with torch.no_grad():
        model(x)
    handle.remove()
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][0] == 1 and seen[0][2:] == (cells, cells)
    with GradCAM(model=model, target_layers=[layer]) as cam:
        heat = cam(input_tensor=x.requires_grad_(True), targets=None)
        grads = cam.activations_and_grads.gradients  # the class score's gradient reached the layer
        assert len(grads) == 1 and tuple(grads[0].shape) == seen[0]
    assert heat.shape == (1, SIDE, SIDE) and np.isfinite(heat).all()


def test_crop_box_is_the_centre_crop_of_the_transforms_geometry():
    lite0 = resolve("efficientnet_lite0").info.preprocess  # shorter side to 256, centre 224
    # 300x200 -> 384x256, crop offset (80, 16): 224 resized pixels are 175 photo pixels
    assert crop_box((300, 200), lite0) == (62.5, 12.5, 237.5, 187.5)
    slim = PreprocessSpec(size=224, rule="central_fraction", fraction=0.875)
    assert crop_box((300, 200), slim) == (18, 12, 282, 188)
    heat, inside = heat_on_photo(np.ones((224, 224), np.float32), (300, 200), lite0)
    assert heat.shape == inside.shape == (200, 300)
    assert inside[100, 150] and not inside[100, 40] and not inside[5, 150]
    assert heat[~inside].sum() == 0 and heat[inside].min() > 0.99
    # a crop larger than the resized photo pads (torchvision's center_crop): the box reaches outside
    padded = PreprocessSpec(size=224, resize=200)
    assert crop_box((100, 100), padded) == (-6, -6, 106, 106)
    heat, inside = heat_on_photo(np.ones((224, 224), np.float32), (100, 100), padded)
    assert heat.shape == (100, 100) and inside.all()


def test_cli_writes_the_overlay_at_the_photos_size(tmp_path, capsys):
    out = tmp_path / "overlay.png"
    assert main(["explain", str(CAR), "-m", "efficientnet_lite0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "efficientnet_lite0" in printed and "its top-1" in printed
    p = float(re.search(r"p=([\d.]+)", printed).group(1))
    assert 0 < p <= 1
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == load_image(CAR).size
        img.verify()


def test_overlay_of_an_exif_rotated_photo_is_upright(explainer, tmp_path):
    photo = Image.open(CAR)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    rotated = tmp_path / "rotated.jpg"
    photo.save(rotated, "JPEG", exif=exif.tobytes(), quality=95)
    e = explainer.explain(rotated)
    assert e.image.size == (photo.height, photo.width)
    img = overlay_image(e)
    assert img.size == (photo.height, photo.width)
    # the part outside the model's crop is the photo dimmed, with no heat
    _, inside = heat_on_photo(e.heat, e.image.size, e.spec)
    assert not inside.all() and np.asarray(img)[~inside].max() <= 255 * 0.35 + 1


def test_explaining_leaves_torchs_thread_count_as_it_was(explainer):
    before = torch.get_num_threads()
    with torch_threads(before + 1):
        explainer.explain(CAR)  # runs on one thread, then puts back what it found
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_object_on_one_side_gets_most_of_the_mass(explainer):
    left = explainer.explain(canvas([(GUITAR, "left")]))
    right = explainer.explain(canvas([(GUITAR, "right")]))
    assert left.class_index == left.top1_index and right.class_index == right.top1_index
    assert left_share(left) > 0.75
    assert left_share(right) < 0.25


def test_mass_moves_with_the_target_class(explainer):
    """Two photos side by side: each one's own top-1 (taken on it alone) draws the heat to its side."""
    elephant = explainer.explain(ELEPHANT).top1_index
    car = explainer.explain(CAR).top1_index
    assert elephant != car
    both = canvas([(ELEPHANT, "left"), (CAR, "right")])
    towards_elephant = explainer.explain(both, class_index=elephant)
    towards_car = explainer.explain(both, class_index=car)
    assert towards_elephant.class_index == elephant and towards_car.class_index == car
    assert left_share(towards_elephant) > 0.7 and left_share(towards_car) < 0.3
    assert left_share(towards_elephant) - left_share(towards_car) > 0.5


def test_class_by_index_wnid_or_name():
    assert parse_class("207") == parse_class("golden retriever") == parse_class("Golden_Retriever") == 207
    assert parse_class("n02099601") == 207
    with pytest.raises(ValueError, match="outside 0..999"):
        parse_class("1000")
    with pytest.raises(ValueError, match="did you mean golden retriever"):
        parse_class("golden retrevier")


def test_which_models_have_gradients():
    assert gradient_problem("efficientnet_lite0") is None
    assert gradient_problem("resnet50") is None  # a PyTorch model, whether or not its weights are here
    assert gradient_problem(CARD) == "no gradients: tflite model"
    assert gradient_problem("efficientnet_lite0", runtime="int8") == "no gradients: int8 model"


@pytest.mark.parametrize("argv,rc,message", [
    (["-m", CARD], 2, "no gradients: tflite model"),
    (["-m", "vit_b_16"], 2, "vision transformer"),
    (["--class", "golden retrevier"], 2, "unknown ImageNet-1k class 'golden retrevier'"),
    (["--out", "overlay.gif"], 2, "unknown image suffix '.gif'"),
])
def test_cli_refuses_with_a_clear_error(argv, rc, message, tmp_path, capsys):
    out = ["--out", str(tmp_path / "o.png")] if "--out" not in argv else []
    assert main(["explain", str(CAR), *out, *argv]) == rc
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_cli_names_a_photo_it_cannot_read(tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    assert main(["explain", str(bad), "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "error" in err


def test_save_image_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="unknown image suffix"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "x.bmpx")


def test_gallery_shows_each_models_overlay_for_its_own_top1(tmp_path, monkeypatch):
    from pathlib import Path

    from topfive.report import gallery, load_study
    from topfive.report.render import class_names

    fixtures = Path(__file__).resolve().parent / "fixtures" / "report"
    monkeypatch.setattr(gallery, "GALLERY_SIZE", 2)  # two photos: the cells, not the gallery, are tested here
    study = load_study(fixtures / "eval", None)
    text = "\n".join(gallery.section_gallery(study, tmp_path, [EVAL], class_names()))
    assert "Without real weights here, so neither compared nor explained: resnet50" in text
    names = class_names()
    shown = 0
    for file, _, rows in gallery.disagreements(study):
        for model in ("efficientnet_lite0", "efficientnet_lite1"):
            top1 = int(rows[model]["top5_indices"].split()[0])
            link = f"gallery/{gallery.thumbnail_name(file).removesuffix('.jpg')}.gradcam.{model}.{top1}.png"
            assert f"| ![{names[top1]}]({link}) |" in text, (file, model)
            with Image.open(tmp_path / link) as img:
                assert img.format == "PNG" and max(img.size) <= gallery.OVERLAY_PX
            shown += 1
        assert f"| {CARD} |" in text
    assert shown == 4 and text.count("*no gradients: tflite model*") == 2
    overlays = gallery.Overlays(tmp_path)
    assert overlays.cell("efficientnet_lite0@int8", {}, EVAL, "x") == "*no gradients: int8 model*"
    assert overlays.cell("no_such_model", {}, EVAL, "x").startswith("*no overlay: unknown model")


def test_package_exports_the_documented_names(explainer, tmp_path):
    import topfive.explain as package
    from topfive.explain import Explainer as exported, overlay_image as draw, save_image as save

    assert exported is Explainer and draw is overlay_image and save is save_image
    assert {"Explainer", "overlay_image", "save_image", "parse_class", "NoGradients"} <= set(package.__all__)
    with Image.open(save(draw(explainer.explain(CAR), max_side=64), tmp_path / "t.webp")) as img:
        assert img.format == "WEBP" and max(img.size) == 64

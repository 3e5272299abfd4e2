"""Draft JPEG decoding (DCT scaling) on a 12-megapixel photo: size kept, prediction kept."""

import pytest
from PIL import Image

from conftest import EVAL
from topfive.decode.images import load_image
from topfive.predict import Classifier

CAT = sorted(EVAL.glob("images/cat/*.jpg"))[0]
VIOLIN = sorted(EVAL.glob("images/violin/*.jpg"))[0]


@pytest.fixture(scope="module")
def big_jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    out = []
    for photo in (CAT, VIOLIN):
        target = folder / f"{photo.stem}-12mp.jpg"
        Image.open(photo).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(target, quality=90)
        out.append(target)
    return out


def test_draft_decodes_smaller_but_never_below_the_draft_size(big_jpegs):
    full = load_image(big_jpegs[0])
    assert full.size == (4000, 3000)
    for draft_size in (256, 274, 300, 700):
        img = load_image(big_jpegs[0], draft_size=draft_size)
        assert min(img.size) >= draft_size
        assert img.width < 4000 and img.mode == "RGB"
    assert load_image(big_jpegs[0], draft_size=256).size == (500, 375)  # 1/8 DCT scale


def test_draft_leaves_small_photos_alone():
    photo = load_image(CAT)
    assert load_image(CAT, draft_size=256).size == photo.size


def test_draft_keeps_the_top1_of_a_big_jpeg(big_jpegs, lite0):
    drafting = Classifier("efficientnet_lite0", runtime=lite0.runtime, draft=True)
    assert drafting.draft_size() == 512  # lite0: resize 256, crop 224; decode to >= 2 x 256
    full = lite0.predict(big_jpegs)
    draft = drafting.predict(big_jpegs)
    assert [p.top[0].index for p in draft] == [p.top[0].index for p in full]
    for d, f in zip(draft, full):
        assert abs(d.top[0].probability - f.top[0].probability) < 0.1

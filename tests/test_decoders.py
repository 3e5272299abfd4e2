"""The one decoder interface: make_decoder(kind, spec, ...)(sources) -> (batch, errors)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import EVAL
from topfive.decode import DECODERS, make_decoder
from topfive.decode.images import ImageNotFound, NotAnImage
from topfive.models import resolve
from topfive.transforms import PreprocessSpec

PHOTOS = [str(p) for p in sorted(EVAL.glob("images/*/*.jpg"))[::110][:5]]
LITE0 = resolve("efficientnet_lite0").info.preprocess
NHWC_BGR = PreprocessSpec(size=224, rule="central_fraction", fraction=0.875, mean=(0, 0, 0), std=(1, 1, 1),
                          channels="BGR", dtype="uint8", layout="NHWC")


@pytest.mark.parametrize("spec", [LITE0, NHWC_BGR], ids=["lite0", "nhwc-bgr-uint8"])
def test_both_decoders_give_the_same_batch_and_errors(tmp_path, spec):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    sources = [PHOTOS[0], str(tmp_path / "missing.jpg"), PHOTOS[1], str(text), *PHOTOS[2:]]
    with ThreadPoolExecutor(2) as pool:
        results = {kind: make_decoder(kind, spec, pool=pool)(sources) for kind in DECODERS}
    (pillow, pillow_errors), (tensor, tensor_errors) = results["pillow"], results["tensor"]
    assert [type(e) for e in pillow_errors] == [type(e) for e in tensor_errors]
    assert [type(e) if e else None for e in pillow_errors] == [None, ImageNotFound, None, NotAnImage, None, None, None]
    shape = (5, 224, 224, 3) if spec.layout == "NHWC" else (5, 3, 224, 224)
    assert pillow.shape == tensor.shape == shape and pillow.dtype == tensor.dtype
    assert torch.equal(pillow, tensor)  # libjpeg-turbo on CPU decodes as Pillow does


def test_nothing_decodable_gives_no_batch(tmp_path):
    for kind in DECODERS:
        batch, errors = make_decoder(kind, LITE0)([str(tmp_path / "missing.jpg")])
        assert batch is None and isinstance(errors[0], ImageNotFound)
        assert make_decoder(kind, LITE0)([]) == (None, [])


def test_pool_or_none_gives_the_same_batch():
    serial, _ = make_decoder("tensor", LITE0)(PHOTOS)
    with ThreadPoolExecutor(3) as pool:
        threaded, _ = make_decoder("tensor", LITE0, pool=pool, workers=3)(PHOTOS)
    assert torch.equal(serial, threaded)


def test_draft_is_pillows_and_unknown_kinds_are_refused():
    drafting = make_decoder("pillow", LITE0, draft=True)
    assert drafting.draft_size == 512
    with pytest.raises(ValueError, match="draft"):
        make_decoder("tensor", LITE0, draft=True)
    with pytest.raises(ValueError, match="decode"):
        make_decoder("nvjpeg", LITE0)

"""Classifier.predict's contract: one input or many, errors raised as the decoder gave them."""

import warnings

import pytest

from conftest import EVAL
from topfive.decode.images import CorruptImage, ImageNotFound
from topfive.predict import Classifier, Failure, Prediction

PHOTOS = [str(p) for p in sorted(EVAL.glob("images/*/*.jpg"))[::120][:4]]


def rejecting(clf, bad: str):
    """clf's decoder, except that it reports `bad` as corrupt, as a GPU decoder might reject a
    file that Pillow reads."""
    plain = clf.decoder

    def decoder(pool=None):
        decode = plain(pool)

        def call(chunk):
            batch, errors = decode([s for s in chunk if s != bad])
            given = iter(errors)
            error = CorruptImage(bad, "rejected by this decoder")
            return batch, [error if s == bad else next(given) for s in chunk]

        return call

    clf.decoder = decoder


@pytest.mark.parametrize("decode", ["pillow", "tensor"])
def test_raise_gives_the_decoders_own_error_even_where_pillow_reads_the_file(lite0, decode):
    clf = Classifier.around(lite0.runtime, lite0.name, lite0.spec, entry=lite0.entry, decode=decode, batch_size=2)
    rejecting(clf, PHOTOS[1])
    with pytest.raises(CorruptImage, match="rejected by this decoder"):
        clf.predict(PHOTOS)
    collected = clf.predict(PHOTOS, errors="collect")
    assert [type(r) for r in collected] == [Prediction, Failure, Prediction, Prediction]
    assert collected[1].reason == "rejected by this decoder"


def test_raise_gives_the_first_error_in_input_order(lite0, tmp_path):
    missing, text = tmp_path / "missing.jpg", tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageNotFound, match="missing.jpg"):
        lite0.predict([PHOTOS[0], str(missing), str(text)])


def test_an_unknown_errors_value_is_refused(lite0):
    with pytest.raises(ValueError, match="errors"):
        lite0.predict(PHOTOS[:1], errors="ignore")


def test_a_generator_is_many_sources(lite0):
    listed = lite0.predict(PHOTOS[:3])
    generated = lite0.predict(p for p in PHOTOS[:3])
    assert isinstance(generated, list) and len(generated) == 3
    assert [[c.index for c in p.top] for p in generated] == [[c.index for c in p.top] for p in listed]
    assert isinstance(lite0.predict(PHOTOS[0]), Prediction)  # a str stays one source
    assert isinstance(lite0.predict(open(PHOTOS[0], "rb").read()), Prediction)  # so do bytes


def test_backend_keyword_is_the_deprecated_spelling_of_runtime(lite0):
    with pytest.warns(DeprecationWarning, match="runtime="):
        clf = Classifier("efficientnet_lite0", backend=lite0.runtime)
    assert clf.runtime is lite0.runtime and clf.backend is lite0.runtime
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="runtime"):
            Classifier("efficientnet_lite0", runtime="torch", backend="onnxruntime")
    with pytest.raises(TypeError, match="probabilities"):
        Classifier("efficientnet_lite0", runtime=object())


def test_the_default_runtime_is_auto(lite0):
    """auto: ONNX Runtime on CPU for a zoo model (installed with the package's extras here)."""
    assert "onnx" in lite0.runtime.name
    assert type(Classifier("efficientnet_lite0", runtime="auto").runtime) is type(lite0.runtime)

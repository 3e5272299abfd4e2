"""Coverage-guided fuzzing of the decoders with atheris (libFuzzer for Python).

The target feeds each input, as bytes, to `topfive.decode.images.load_image` (and what it returns to
`topfive.transforms.preprocess`: the Pillow decoder's two steps) and to the tensor decoder
(`make_decoder("tensor", spec)([data])`): whatever they raise must be an ImageError, a decoded batch
must be 1 x 3 x 224 x 224 and finite. Pillow's plugins and topfive are instrumented, so
the fuzzer steers by the Python branches of the parsers (the C decoders underneath are not).
The seeds are the hostile corpus (tests/hostile_corpus.py) plus small valid files of every promised
format and bare format signatures.

In CI the test fuzzes for TOPFIVE_FUZZ_SECONDS (default 25) seconds after the imports and the seeds,
about 40 s in all. Longer, locally (see docs/security.md):

    TOPFIVE_FUZZ_SECONDS=300 .venv/bin/python -m pytest -q tests/test_fuzz_decode.py
    .venv/bin/python tests/test_fuzz_decode.py -max_total_time=3600 -artifact_prefix=/tmp/fuzz- [CORPUS_DIR]

Run as a script it takes libFuzzer's flags; a crashing input is written to `<artifact_prefix>crash-*`
and is replayed by passing that file instead of a folder.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("TOPFIVE_FUZZ_SECONDS", "25"))
MAX_LEN = 16 * 1024  # libFuzzer's input cap; bigger seeds are left out: mutating them is too slow to pay
ADDRESS_SPACE = 8 << 30  # as in test_hostile_cli.py: a decoder that lets an input size its work fails here
SIGNATURES = [b"\xff\xd8\xff\xe0\0\x10JFIF\0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"RIFF\0\0\0\0WEBPVP8 ",
              b"BM", b"II*\0", b"MM\0*", b"%!PS-Adobe-3.0 EPSF-3.0\n", b"P6\n1 1\n255\n", b"\0\0\1\0"]


def write_seeds(seeds: Path) -> Path:
    """Write the seed inputs into the folder `seeds`, one file each: the corpus's regular files of up to
    MAX_LEN bytes, small files of every promised format, bare signatures. Returns `seeds`."""
    sys.path.insert(0, str(HERE))
    from hostile_corpus import encode, make_corpus
    from PIL import Image

    seeds.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as scratch:
        good, bad = make_corpus(scratch)
        n = 0
        for path in [*good, *bad]:
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_LEN:
                (seeds / f"corpus-{n:03d}").write_bytes(path.read_bytes())
                n += 1
        small = Image.open(good[0]).convert("RGB").resize((48, 32))
    # Small versions of the legal variants (the photos themselves are too big to mutate quickly).
    exif = Image.Exif()
    exif[0x0112] = 6
    variants = [(small, "JPEG", {}), (small, "JPEG", {"progressive": True}), (small, "JPEG", {"exif": exif.tobytes()}),
                (small.convert("CMYK"), "JPEG", {}), (small.convert("L"), "JPEG", {}), (small, "PNG", {}),
                (small.convert("P"), "PNG", {"transparency": 0}), (small.convert("RGBA"), "PNG", {}),
                (small, "GIF", {"save_all": True, "append_images": [small.rotate(180)]}), (small, "WEBP", {}),
                (small, "BMP", {}), (small, "TIFF", {}), (small, "TIFF", {"compression": "tiff_lzw"})]
    for k, (img, fmt, options) in enumerate(variants):
        (seeds / f"small-{k:02d}").write_bytes(encode(img, fmt, **options))
    jpeg = encode(small, "JPEG")
    (seeds / "small-cut-eoi").write_bytes(jpeg[: len(jpeg) * 2 // 3] + b"\xff\xd9")
    for k, signature in enumerate(SIGNATURES):
        (seeds / f"signature-{k}").write_bytes(signature)
    return seeds


def make_target():
    """The fuzz target; imported inside atheris.instrument_imports so that PIL and topfive are traced."""
    import torch
    from PIL import Image

    Image.init()  # every plugin now, so that they are all instrumented
    from topfive.decode import make_decoder
    from topfive.decode.images import ImageError, load_image
    from topfive.transforms import PreprocessSpec, preprocess

    spec = PreprocessSpec(size=224, resize=256)  # EfficientNet-Lite0's geometry
    decoders = [make_decoder("tensor", spec)]

    def target(data: bytes) -> None:
        try:  # the Pillow decoder's two steps, so that the image is decoded once for both
            assert preprocess(load_image(data), spec).shape == (3, 224, 224)
        except ImageError:
            pass
        for decoder in decoders:
            try:
                batch, errors = decoder([data])
            except ImageError:
                continue
            assert len(errors) == 1
            if errors[0] is None:
                assert batch is not None and tuple(batch.shape) == (1, 3, 224, 224), batch
                assert bool(torch.isfinite(batch).all()), "non-finite pixels"
            else:
                assert isinstance(errors[0], ImageError) and batch is None, errors

    return target


def main(argv: list[str]) -> None:
    """libFuzzer's command line. Corpus folders named (the first one is where new inputs go): the seeds
    are written beside the first, in <it>-seeds, and fuzzed from too. None named: a fresh folder in
    /tmp. Files named instead: each is run once (a crash's replay)."""
    import atheris

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    named = [Path(a) for a in argv[1:] if not a.startswith("-")]
    if not named:
        named = [Path(tempfile.mkdtemp(prefix="topfive-fuzz-"))]
        argv = [*argv, str(named[0])]
        print(f"fuzz: new inputs go to {named[0]}", file=sys.stderr)
    with atheris.instrument_imports(include=["PIL", "topfive"]):
        target = make_target()  # first: what write_seeds imports must be imported instrumented
    if all(p.is_dir() for p in named):
        seeds = named[0].parent / f"{named[0].name}-seeds"
        shutil.rmtree(seeds, ignore_errors=True)
        argv = [*argv, str(write_seeds(seeds))]
    atheris.Setup(argv, target)
    atheris.Fuzz()


def test_fuzz_decoders(tmp_path):
    import atheris  # noqa: F401  (a dev dependency: missing, the test fails rather than skips)
    found = tmp_path / "found"
    found.mkdir()
    args = [sys.executable, __file__, f"-max_total_time={SECONDS}", f"-max_len={MAX_LEN}", "-timeout=30",
            "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(found)]
    src = str(HERE.parent / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(args, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            env=env, timeout=SECONDS + 240)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-", "timeout-")))
    log = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("INFO: Instrumenting"))
    assert result.returncode == 0 and not crashes, f"{crashes}\n{log[-6000:]}"
    assert "Done" in log, log[-3000:]


if __name__ == "__main__":
    main(sys.argv)

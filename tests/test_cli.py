import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image
from skimage import data

import topfive

SRC = str(Path(topfive.__file__).resolve().parents[1])


def run(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "topfive", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_help_does_not_import_torch():
    code = "import sys; from topfive.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=SRC)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr
    result = run("--help")
    assert result.returncode == 0 and "classify" in result.stdout and "models" in result.stdout


def test_classify_formats_and_failures(tmp_path):
    cat = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(cat)
    (tmp_path / "broken.jpg").write_text("nope")

    table = run("classify", str(tmp_path))
    assert table.returncode == 1  # one input failed
    assert "broken.jpg" in table.stderr and "not a recognised image" in table.stderr
    assert "chelsea.png" in table.stdout and "probability" in table.stdout

    as_json = json.loads(run("classify", str(cat), "--format", "json", "--top-k", "3").stdout)
    assert len(as_json) == 1 and len(as_json[0]["top"]) == 3
    assert 281 <= as_json[0]["top"][0]["index"] <= 285

    rows = list(csv.DictReader(io.StringIO(run("classify", str(cat), "-f", "csv").stdout)))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert set(rows[0]) == {"source", "model", "rank", "index", "wnid", "name", "probability", "error"}


def test_unknown_model_is_a_clear_error(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    result = run("classify", str(tmp_path / "x.png"), "--model", "resnet5O")
    assert result.returncode == 2 and "did you mean" in result.stderr


def test_models_listing():
    result = run("models", "--format", "csv")
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["efficientnet_lite0"]["weights"] == "packaged"
    assert rows["alexnet:IMAGENET1K_V1"]["acc1"] == "56.52"


def test_classify_decode_tensor_matches_pillow_on_the_cpu(tmp_path):
    from conftest import EVAL

    photos = [str(p) for p in sorted(EVAL.glob("images/*/*.jpg"))[::97][:5]]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    args = ["classify", *photos, str(tmp_path / "broken.jpg"), "-f", "json", "--backend", "eager"]
    pillow, tensor = run(*args), run(*args, "--decode", "tensor")
    assert pillow.returncode == tensor.returncode == 1  # the broken file fails in both, the rest go on
    assert "broken.jpg" in tensor.stderr
    results = list(zip(json.loads(pillow.stdout), json.loads(tensor.stdout), strict=True))
    assert [("top" in a, "top" in b) for a, b in results] == [(True, True)] * 5 + [(False, False)]
    for a, b in results[:5]:
        assert [c["index"] for c in a["top"]] == [c["index"] for c in b["top"]]
        assert abs(a["top"][0]["probability"] - b["top"][0]["probability"]) < 1e-5
    clash = run("classify", photos[0], "--decode", "tensor", "--draft")
    assert clash.returncode == 2 and "does not combine" in clash.stderr

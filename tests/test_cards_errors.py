"""Card validation, files, downloads, resolution and the CLI: each failure is a clear error naming the card."""

import json
import sys

import pytest
from conftest import SHARED

from topfive.models import UnknownModel, all_entries, cards, resolve
from topfive.models.cards import CardError, ModelFileError, card_entry, load_card
from topfive.models.weights import WeightsUnavailable
from topfive.runtime import RuntimeMissing, make_runtime

MODELS = SHARED / "models"
TFLITE = "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPFIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOPFIVE_OFFLINE", "1")
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", "")  # recorded, so a CLI run that sets it is undone
    monkeypatch.delenv("TOPFIVE_MODELS_DIR")
    monkeypatch.delenv("TOPFIVE_TFLITE_RUNTIME", raising=False)


def card_data(name=TFLITE):
    return json.loads((MODELS / f"{name}.json").read_text())


def write_card(folder, data, link_model=True):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['file']}.json"
    path.write_text(json.dumps(data))
    if link_model:
        (folder / data["file"]).symlink_to(MODELS / data["file"])
    return path


def test_every_shared_card_loads_as_it_is():
    loaded = cards.cards_in(MODELS)
    assert {c.format for c in loaded} == {"onnx", "tflite", "openvino"} and len(loaded) == 7
    assert {c.name for c in loaded} == set(cards.builtin_cards())  # the packaged copies are the same cards


def test_packaged_cards_equal_the_shared_ones():
    for path in cards.BUILTIN_DIR.glob("*.json"):
        assert json.loads(path.read_text()) == json.loads((MODELS / path.name).read_text())


def test_wrong_sha256(tmp_path):
    data = card_data()
    data["sha256"] = "0" * 64
    path = write_card(tmp_path / "m", data)
    with pytest.raises(ModelFileError) as e:
        make_runtime(card_entry(path))
    assert str(path) in str(e.value) and "`sha256`" in str(e.value) and "0" * 64 in str(e.value)
    assert card_entry(path).weights_status() == "download"


def test_wrong_sha256_of_the_ir_weights(tmp_path):
    data = card_data("squeezenet1.1-fp16.xml")
    data["weights_file"]["sha256"] = "1" * 64
    path = write_card(tmp_path / "m", data)
    (tmp_path / "m" / "squeezenet1.1-fp16.bin").symlink_to(MODELS / "squeezenet1.1-fp16.bin")
    with pytest.raises(ModelFileError, match=r"weights_file\.sha256"):
        make_runtime(card_entry(path))


def test_missing_file(tmp_path):
    path = write_card(tmp_path / "m", card_data(), link_model=False)
    with pytest.raises(ModelFileError) as e:
        make_runtime(card_entry(path))
    message = str(e.value)
    assert str(path) in message and TFLITE in message and "not found" in message and "--models-dir" in message
    assert isinstance(e.value, WeightsUnavailable)  # skipped like any model without its weights
    assert card_entry(path).weights_status() == "download"


def test_model_file_without_a_card(tmp_path):
    (tmp_path / "orphan.onnx").write_bytes(b"x")
    with pytest.raises(CardError, match="no model card beside"):
        resolve(str(tmp_path / "orphan.onnx"))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("format", "caffe", r"field `format`: 'caffe' is not one of onnx, tflite, openvino"),
        ("card_version", 2, r"field `card_version`: unsupported version 2"),
        ("sha256", "abc", r"field `sha256`: not a sha256"),
        ("input.layout", "CHW", r"field `input.layout`"),
        ("preprocess.crop.rule", "random", r"field `preprocess.crop.rule`"),
        ("preprocess.crop.fraction", 1.5, r"field `preprocess.crop.fraction`: must be in \(0, 1\]"),
        ("preprocess.crop.size", "224", r"field `preprocess.crop.size`: expected int"),
        ("output.label_offset", 0, r"field `output.num_classes`: 1001 classes with label_offset 0"),
        ("output.kind", None, r"field `output.kind`: missing"),
        ("file", "../x.tflite", r"field `file`: must be a plain file name"),
    ],
)
def test_bad_field(tmp_path, field, value, message):
    data = card_data()
    node = data
    *parents, leaf = field.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    path = write_card(tmp_path, data, link_model=False)
    with pytest.raises(CardError, match=message) as e:
        load_card(path)
    assert str(path) in str(e.value)


def test_not_json(tmp_path):
    path = tmp_path / "x.onnx.json"
    path.write_text("{nope")
    with pytest.raises(CardError, match="not a readable JSON"):
        resolve(str(path))


@pytest.mark.parametrize(
    "name, module, extra",
    [("mobilenetv2-12-int8.onnx", "onnxruntime", "onnx"), ("squeezenet1.1-fp16.xml", "openvino", "openvino")],
)
def test_missing_runtime(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(RuntimeMissing) as e:
        make_runtime(resolve(str(MODELS / name)))
    assert f"pip install 'topfive[{extra}]'" in str(e.value) and module in str(e.value)


def test_missing_tflite_runtime(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(RuntimeMissing, match=r"pip install 'topfive\[tflite\]'.*TOPFIVE_TFLITE_RUNTIME=openvino"):
        make_runtime(resolve(str(MODELS / TFLITE)))
    monkeypatch.setenv("TOPFIVE_TFLITE_RUNTIME", "openvino")
    assert make_runtime(resolve(str(MODELS / TFLITE))).name == "openvino"
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(RuntimeMissing, match=r"pip install 'topfive\[openvino\]'"):
        make_runtime(resolve(str(MODELS / TFLITE)))
    monkeypatch.setenv("TOPFIVE_TFLITE_RUNTIME", "tensorflow")
    with pytest.raises(ValueError, match="TOPFIVE_TFLITE_RUNTIME='tensorflow'"):
        make_runtime(resolve(str(MODELS / TFLITE)))


def test_resolve_card_model_file_and_short_name(monkeypatch):
    by_card = resolve(str(MODELS / f"{TFLITE}.json"))
    by_file = resolve(str(MODELS / TFLITE))
    assert by_card.info.name == by_file.info.name == "mobilenet_v1_0.25_128_quant"
    assert by_card.weights_status() == "local"
    short = resolve("mobilenet_v1_0.25_128_quant")
    assert short.card.builtin and short.weights_status() == "download"  # offline, no mirror, empty cache
    with pytest.raises(ModelFileError, match="TOPFIVE_OFFLINE"):
        make_runtime(short)
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", str(MODELS))
    assert resolve(f"{TFLITE}").weights_status() == "local"
    assert resolve("mobilenetv2-12-int8").info.family == "onnx"
    with pytest.raises(UnknownModel):
        resolve("mobilenet_v9_quant")


def test_all_entries_include_the_packaged_cards():
    names = {e.info.name for e in all_entries() if e.info.family in ("onnx", "tflite", "openvino")}
    assert "mobilenet_v2_1.0_224_quant" in names and "squeezenet1.1-fp16" in names and len(names) == 7


def test_download_checks_sha256_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("TOPFIVE_OFFLINE")
    data = card_data()
    data["source"]["url"] = (MODELS / TFLITE).as_uri()  # a file:// URL stands in for the network
    path = write_card(tmp_path / "m", data, link_model=False)
    entry = card_entry(path)
    assert entry.weights_status() == "download"
    got = entry.model_path()
    assert got == tmp_path / "cache" / "models" / TFLITE and entry.weights_status() == "local"

    data["file"] = "renamed.tflite"
    data["sha256"] = "2" * 64
    bad = write_card(tmp_path / "n", data, link_model=False)
    with pytest.raises(ModelFileError, match="`sha256`"):
        card_entry(bad).model_path()
    assert not (tmp_path / "cache" / "models" / "renamed.tflite").exists()
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir() if p.name.startswith(".")] == []


def test_cli_models_dir_and_fetch(tmp_path, capsys, monkeypatch):
    from topfive.cli import main

    assert main(["models", "--dir", str(MODELS), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 7 and {r["family"] for r in rows} == {"onnx", "tflite", "openvino"}
    assert all(r["weights"] == "local" and r["acc1"] == "" for r in rows)

    assert main(["--models-dir", str(MODELS), "models", "--fetch", "squeezenet1.1-fp16"]) == 0
    out = capsys.readouterr().out
    assert "squeezenet1.1-fp16.xml" in out and "squeezenet1.1-fp16.bin" in out
    assert (tmp_path / "cache" / "models" / "squeezenet1.1-fp16.bin").is_file()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.onnx.json").write_text("{}")
    assert main(["models", "--dir", str(broken)]) == 2
    assert "field `card_version`: missing" in capsys.readouterr().err


def test_cli_classify_with_a_card(tmp_path, capsys):
    from PIL import Image
    from skimage import data

    from topfive.cli import main

    Image.fromarray(data.chelsea()).save(tmp_path / "chelsea.png")
    code = main(
        [
            "--models-dir",
            str(MODELS),
            "classify",
            "-m",
            "mobilenet_v1_0.25_128_quant",
            "-f",
            "json",
            "-k",
            "1",
            str(tmp_path / "chelsea.png"),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["model"] == "mobilenet_v1_0.25_128_quant" and 281 <= result["top"][0]["index"] <= 285


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("input.name", "images", r"field `input.name`: 'images', but the model's input is 'input'"),
        ("output.name", "logits", r"field `output.name`"),
        (
            "preprocess.crop.size",
            224,
            r"field `input.layout`: NHWC 224x224, but the model's input shape is \[1, 128, 128, 3\]",
        ),
    ],
)
def test_card_checked_against_the_graph(tmp_path, field, value, message):
    data = card_data()
    section, leaf = field.rsplit(".", 1)
    node = data
    for part in section.split("."):
        node = node[part]
    node[leaf] = value
    path = write_card(tmp_path, data)
    with pytest.raises(CardError, match=message):
        make_runtime(card_entry(path))


def test_uint8_card_for_a_float_model(tmp_path):
    data = card_data("squeezenet1.1-fp16.xml")
    data["input"]["dtype"] = data["preprocess"]["pixels"]["dtype"] = "uint8"
    data["preprocess"]["pixels"].update(scale=1, mean=[0, 0, 0], std=[1, 1, 1])
    path = write_card(tmp_path, data)
    (tmp_path / "squeezenet1.1-fp16.bin").symlink_to(MODELS / "squeezenet1.1-fp16.bin")
    with pytest.raises(CardError, match="field `input.dtype`: uint8, but the model's input is float32"):
        make_runtime(card_entry(path))


def test_wrong_size(tmp_path):
    data = card_data()
    data["size_bytes"] += 1
    path = write_card(tmp_path, data)
    with pytest.raises(ModelFileError, match=r"field `size_bytes`: .* has 525598 bytes, the card says 525599"):
        card_entry(path).model_path()


def test_mirror_replaces_the_file_never_writes_into_it(tmp_path, monkeypatch):
    """`models --fetch` over an existing file: the new file takes its name in one rename, so another
    name for the old file (a hard link here; a reader holding it open alike) keeps the old bytes."""
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", str(MODELS))
    card = cards.builtin_card("mobilenet_v1_0.25_128_quant")
    cache = tmp_path / "cache" / "models"
    cache.mkdir(parents=True)
    other = tmp_path / "other"
    other.write_bytes(b"another file")
    (cache / TFLITE).hardlink_to(other)
    assert cards.mirror(card) == [cache / TFLITE]
    assert other.read_bytes() == b"another file"
    assert (cache / TFLITE).read_bytes() == (MODELS / TFLITE).read_bytes()


def test_mirror_leaves_no_bad_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", str(MODELS))
    card = cards.builtin_card("mobilenet_v1_0.25_128_quant")

    def short_copy(source, dest):
        with open(source, "rb") as f, open(dest, "wb") as out:
            out.write(f.read(1000))

    monkeypatch.setattr("shutil.copyfile", short_copy)
    target = tmp_path / "mirror"
    with pytest.raises(ModelFileError, match="`size_bytes`"):
        cards.mirror(card, target)
    assert list(target.iterdir()) == []  # neither the model file nor a temporary one


def test_files_go_to_the_models_folder_of_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPFIVE_MODELS_DIR", str(MODELS))
    assert cards.models_cache() == tmp_path / "cache" / "models"
    paths = cards.mirror(cards.builtin_card("squeezenet1.1-fp16"))
    assert [p.parent for p in paths] == [tmp_path / "cache" / "models"] * 2

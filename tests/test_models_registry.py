"""Resolution across the kinds of entries, the entry interface, and the shape of the models package."""

import ast
import json
from pathlib import Path

import pytest
from conftest import SHARED

import topfive
from topfive.models import NotATorchModel, resolve
from topfive.models.cards import CardEntry

MODELS = SHARED / "models"
PACKAGE = Path(topfive.__file__).parent / "models"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPFIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TOPFIVE_OFFLINE", "1")
    monkeypatch.delenv("TOPFIVE_MODELS_DIR", raising=False)


def test_a_folder_named_like_a_model_does_not_hide_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("resnet50", "efficientnet_lite0", "mobilenetv2-12-int8"):
        (tmp_path / name).mkdir()
    assert resolve("resnet50").info.name == "resnet50:IMAGENET1K_V2"
    assert resolve("efficientnet_lite0").info.name == "efficientnet_lite0"
    assert resolve("mobilenetv2-12-int8").card.builtin


def test_an_existing_file_is_a_card_whatever_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    card = json.loads((MODELS / "mobilenetv2-12-int8.onnx.json").read_text())
    (tmp_path / "mycard").write_text(json.dumps(card))
    entry = resolve("mycard")
    assert isinstance(entry, CardEntry) and entry.card.path == Path("mycard") and not entry.card.builtin


def test_has_module_and_build():
    assert resolve("resnet18").has_module and resolve("efficientnet_lite0").has_module
    card = resolve("mobilenetv2-12-int8")
    assert card.has_module is False
    with pytest.raises(NotATorchModel, match="mobilenetv2-12-int8 is a onnx model; it has no PyTorch module"):
        card.build()
    assert not isinstance(NotATorchModel("x"), TypeError)


def test_card_files_model_path_and_weights_path():
    ir = resolve(str(MODELS / "squeezenet1.1-fp16.xml.json"))
    assert ir.model_path() == MODELS / "squeezenet1.1-fp16.xml"
    assert ir.weights_path() == MODELS / "squeezenet1.1-fp16.bin"
    onnx = resolve(str(MODELS / "mobilenetv2-12-int8.onnx.json"))
    assert onnx.weights_path() is None and onnx.model_path() == MODELS / "mobilenetv2-12-int8.onnx"


def test_top_level_names_come_from_the_models_package():
    from topfive import models

    for name in ("ModelInfo", "UnknownModel", "resolve", "all_entries"):
        assert getattr(topfive, name) is getattr(models, name)


def _imports(path: Path) -> set[str]:
    """The topfive.models modules that `path` imports (absolute imports, as the house rules ask)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("topfive.models"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("topfive.models")}
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_models_modules_form_no_cycle_and_only_the_registry_knows_every_kind():
    graph = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    assert "topfive.models.registry" in graph
    assert not [m for m, deps in graph.items() if "topfive.models.registry" in deps]

    def visit(module, stack):
        assert module not in stack, f"import cycle: {' -> '.join(stack + [module])}"
        for dep in graph.get(module, ()):
            visit(dep, stack + [module])

    for module in graph:
        visit(module, [])
    assert all(len(p.read_text().splitlines()) <= 300 for p in PACKAGE.rglob("*.py"))

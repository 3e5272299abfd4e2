import pytest

from topfive import UnknownModel, all_entries, resolve


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("resnet50", "resnet50:IMAGENET1K_V2"),
        ("resnet50:IMAGENET1K_V1", "resnet50:IMAGENET1K_V1"),
        ("ResNet50_Weights.IMAGENET1K_V1", "resnet50:IMAGENET1K_V1"),
        ("googlenet", "googlenet:IMAGENET1K_V1"),
        ("efficientnet_lite2", "efficientnet_lite2"),
    ],
)
def test_names_resolve(name, canonical):
    assert resolve(name).info.name == canonical


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownModel, match="resnet50"):
        resolve("resnet5O")
    with pytest.raises(UnknownModel, match="IMAGENET1K_V1"):
        resolve("resnet50:IMAGENET1K_V9")


def test_listing_has_metadata_and_weight_status():
    entries = {e.info.name: e for e in all_entries()}
    r50 = entries["resnet50:IMAGENET1K_V2"].info
    assert r50.params == 25_557_032 and r50.gmacs == pytest.approx(4.089) and r50.acc1 == pytest.approx(80.858)
    assert r50.input_size == 224 and r50.weights_mb > 90
    lite = entries["efficientnet_lite1"]
    assert lite.weights_status() == "packaged" and lite.info.input_size == 240
    assert len(entries) > 70


def test_lite_params_and_gmacs_match_the_architecture():
    """The LITE table's params and GMACs are what the code counts, not copied figures."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    for n in (0, 1, 2):
        entry = resolve(f"efficientnet_lite{n}")
        model = entry.build(pretrained=False).eval()
        assert sum(p.numel() for p in model.parameters()) == entry.info.params
        size = entry.info.input_size
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        assert counter.get_total_flops() / 2e9 == pytest.approx(entry.info.gmacs, abs=1e-3)

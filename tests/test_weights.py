"""torchvision weights without network: through torchvision's cache, a local file, or a clear error."""

import urllib.error

import pytest
import torch
import torchvision
from PIL import Image

from topfive import Classifier, WeightsFileError, WeightsUnavailable, resolve
from topfive.models.weights import torchvision_cache_path

URL = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("TOPFIVE_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path


def test_cached_state_dict_loads_without_download(torch_home):
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    path = torch_home / "hub" / "checkpoints" / URL.rsplit("/", 1)[1]
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    assert torchvision_cache_path(URL) == path

    clf = Classifier("resnet18:IMAGENET1K_V1", runtime="torch")
    loaded = clf.runtime.module.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert clf.entry.weights_status() == "cached"
    pred = clf.predict(Image.new("RGB", (300, 200), (120, 40, 200)))
    assert len(pred.top) == 5


def test_missing_weights_name_the_file_the_place_and_the_url(torch_home):
    with pytest.raises(WeightsUnavailable) as err:
        Classifier("resnet18:IMAGENET1K_V1")
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert URL in message and "--weights-file" in message


def test_weights_file_is_used_and_checked(tmp_path, torch_home):
    good = tmp_path / "mine.pt"
    torch.save(torchvision.models.resnet18().state_dict(), good)
    assert Classifier("resnet18", runtime="torch", weights_file=str(good)).name == "resnet18:IMAGENET1K_V1"

    wrong = tmp_path / "wrong.pt"
    torch.save(torchvision.models.alexnet().state_dict(), wrong)
    with pytest.raises(WeightsFileError, match="wrong.pt"):
        Classifier("resnet18", weights_file=str(wrong))

    not_torch = tmp_path / "notes.txt"
    not_torch.write_text("hello")
    with pytest.raises(WeightsFileError, match="notes.txt"):
        Classifier("resnet18", weights_file=str(not_torch))
    with pytest.raises(WeightsUnavailable, match="no such file"):
        Classifier("resnet18", weights_file=str(tmp_path / "absent.pt"))


@pytest.mark.parametrize("arch, weights", [("googlenet", torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1)])
def test_architecture_matches_torchvisions_own_builder(torch_home, arch, weights):
    """GoogLeNet's weights need transform_input=True and aux heads while loading: the model we build
    from the cache must compute exactly what torchvision's builder makes of the same file."""
    torch.manual_seed(0)
    donor = torchvision.models.get_model(arch, weights=None, transform_input=True, aux_logits=True, init_weights=False)
    path = torch_home / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[1]
    path.parent.mkdir(parents=True)
    torch.save(donor.state_dict(), path)

    ours = resolve(f"{arch}:{weights.name}").build().eval()
    theirs = torchvision.models.get_model(arch, weights=weights).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    assert sum(p.numel() for p in ours.parameters()) == weights.meta["num_params"]

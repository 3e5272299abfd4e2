"""Photo sets: manifest with mirror / cache / download (offline), CSV and folder sets, bad labels, bad photos."""

import csv
import hashlib
import shutil
from pathlib import Path

import pytest

from topfive.cli import main
from topfive.eval.datasets import DatasetError, load_dataset
from topfive.eval.evaluate import evaluate

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port: refused at once, no network needed


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def manifest_rows(*labels):
    rows = read(EVAL / "manifest.csv")
    return [next(r for r in rows if r["label"] == label) for label in labels]


def write_manifest(path: Path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_builtin_manifest_is_the_shared_facts():
    shipped = load_dataset("builtin:eval", mirror=EVAL, download=False)
    shared = read(EVAL / "manifest.csv")
    assert [i.file for i in shipped.items] == [r["file"] for r in shared]
    assert [i.sha256 for i in shipped.items] == [r["sha256"] for r in shared]
    assert len(shipped.readable) == 569  # every photo of the mirror matches its sha256
    assert shipped.labels["dog"] == 57 and shipped.label_sets["horse"] == [339]
    assert sum(s["n"] for s in shipped.sources.values()) == 569 and sum(shipped.licences.values()) == 569


def test_default_cache_is_photos_under_topfive_cache(tmp_path, monkeypatch):
    (horse,) = manifest_rows("horse")
    cached = tmp_path / "photos" / horse["sha256"][:2] / (horse["sha256"] + Path(horse["file"]).suffix.lower())
    cached.parent.mkdir(parents=True)
    shutil.copy(EVAL / horse["file"], cached)
    monkeypatch.setenv("TOPFIVE_CACHE", str(tmp_path))
    (item,) = load_dataset(write_manifest(tmp_path / "one.csv", [horse]), download=False).items
    assert item.problem is None and item.path == str(cached)


def test_mirror_cache_and_download_each_photo_says_what_happened(tmp_path):
    horse, cat, cow, coffee = manifest_rows("horse", "cat", "cow", "coffee_cup")
    mirror = tmp_path / "mirror"
    (mirror / horse["file"]).parent.mkdir(parents=True)
    shutil.copy(EVAL / horse["file"], mirror / horse["file"])
    # a stand-in for raw.githubusercontent.com: cat's source is the same bytes, cow's source differs
    # (as for a photo converted after download), coffee cup's source is a PyPI wheel (no raw URL)
    source = tmp_path / "raw"
    for row, data in [(cat, (EVAL / cat["file"]).read_bytes()), (cow, b"the unconverted original")]:
        target = source / row["source_repo"] / row["source_commit"] / row["source_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (tmp_path / "sets").mkdir()  # the manifest's own folder holds no photos
    manifest = write_manifest(tmp_path / "sets" / "m.csv", [horse, cat, cow, coffee])
    cache = tmp_path / "cache"
    d = load_dataset(manifest, mirror=mirror, cache=cache, base_url=source.as_uri())
    by = {i.label: i for i in d.items}
    assert by["horse"].path == str(mirror / horse["file"]) and by["horse"].problem is None
    assert by["cat"].problem is None and Path(by["cat"].path).is_relative_to(cache)
    assert hashlib.sha256(Path(by["cat"].path).read_bytes()).hexdigest() == cat["sha256"]
    assert by["cow"].path is None and by["cow"].problem[0] == "ConvertedFile"
    assert "converted after download" in by["cow"].problem[1] and cow["sha256"] in by["cow"].problem[1]
    assert by["coffee_cup"].problem[0] == "NotDownloadable" and "--mirror" in by["coffee_cup"].problem[1]
    assert [p for p in cache.rglob("*") if p.is_file()] == [Path(by["cat"].path)]  # nothing partial or unchecked

    # second time the cat comes from the cache, even with downloads off
    again = load_dataset(manifest, mirror=mirror, cache=cache, download=False)
    assert {i.label: i.problem for i in again.items}["cat"] is None

    # no network: every missing photo gets its own reason, the set is still loaded
    offline = load_dataset(manifest, mirror=mirror, cache=tmp_path / "empty", base_url=UNREACHABLE)
    problems = {i.label: i.problem for i in offline.items}
    assert problems["horse"] is None
    assert problems["cat"][0] == problems["cow"][0] == "DownloadFailed"
    assert UNREACHABLE in problems["cat"][1] and cat["source_path"].split("/")[-1] in problems["cat"][1]

    # a mirror whose file differs from the manifest is caught by the sha256 check
    (mirror / horse["file"]).write_bytes(b"not the photo")
    bad = load_dataset(manifest, mirror=mirror, cache=cache, download=False)
    assert {i.label: i.problem for i in bad.items}["horse"][0] == "ChecksumMismatch"


def test_unreadable_and_missing_photos_are_listed_and_excluded(tmp_path):
    import torch

    torch.set_num_threads(2)
    horse, cat, dog, cow = manifest_rows("horse", "cat", "dog", "cow")
    broken = b"\xff\xd8\xff\xe0 this JPEG stops here"
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "broken.jpg").write_bytes(broken)
    dog = dict(dog, file="images/broken.jpg", sha256=hashlib.sha256(broken).hexdigest())
    cow = dict(cow, file="images/not-here.jpg")
    manifest = write_manifest(tmp_path / "m.csv", [horse, cat, dog, cow])
    d = load_dataset(manifest, mirror=EVAL, cache=tmp_path / "cache", base_url=UNREACHABLE)
    out = tmp_path / "out"
    report = evaluate(d, ["efficientnet_lite0", "no_such_model"], out, log=lambda m: None)
    failures = {r["file"]: r for r in read(out / "failures.csv")}
    assert set(failures) == {"images/broken.jpg", "images/not-here.jpg"}
    assert failures["images/broken.jpg"]["error"] in ("CorruptImage", "NotAnImage")
    assert failures["images/not-here.jpg"]["error"] == "DownloadFailed"
    assert failures["images/not-here.jpg"]["reason"]
    assert sorted(r["file"] for r in read(out / "predictions.csv")) == sorted([horse["file"], cat["file"]])
    lite0, missing = read(out / "summary.csv")
    assert lite0["n"] == "2" and lite0["weights"] == "real"
    assert missing["model"] == "no_such_model" and missing["top1"] == "" and missing["n"] == ""
    assert missing["weights"].startswith("not available: unknown model")
    assert report["dataset"]["n_images"] == 4 and report["dataset"]["n_failed"] == 2
    assert [m["status"] for m in report["models"]] == ["evaluated", "unavailable"]
    assert read(out / "mcnemar.csv") == []


def test_csv_and_folder_sets_resolve_labels(tmp_path):
    horse = EVAL / manifest_rows("horse")[0]["file"]
    (tmp_path / "photos").mkdir()
    shutil.copy(horse, tmp_path / "photos" / "h.jpg")
    shutil.copy(horse, tmp_path / "photos" / "c.jpg")
    (tmp_path / "set.csv").write_text(f"file,label\nphotos/h.jpg,horse\n{horse},n02389026\nphotos/c.jpg,domestic cat\n")
    d = load_dataset(tmp_path / "set.csv", allow_outside=True)  # the absolute path is outside the set
    assert d.kind == "csv" and [sorted(i.accepted) for i in d.items] == [[339], [339], [281, 282, 283, 284, 285]]
    assert all(i.problem is None for i in d.items)
    (tmp_path / "twice.csv").write_text("file,label\nphotos/h.jpg,horse\nphotos/h.jpg,dog\n")
    with pytest.raises(DatasetError, match="listed again"):
        load_dataset(tmp_path / "twice.csv")

    folder = tmp_path / "folder"
    (folder / "Horses").mkdir(parents=True)
    shutil.copy(horse, folder / "Horses" / "a.jpg")
    shutil.copy(horse, folder / "loose.jpg")
    f = load_dataset(folder)
    assert f.kind == "folder" and f.label_sets == {"Horses": [339]} and f.labels == {"Horses": 1}
    assert [i.problem[0] for i in f.missing] == ["NoLabel"] and f.readable[0].file == "Horses/a.jpg"

    (tmp_path / "badset.csv").write_text("file,label,accepted_imagenet_indices\nphotos/h.jpg,horse,339 1000\n")
    with pytest.raises(DatasetError, match="line 2.*0..999"):
        load_dataset(tmp_path / "badset.csv")
    (tmp_path / "nolabel.csv").write_text("path,what\nx.jpg,horse\n")
    with pytest.raises(DatasetError, match="file,label"):
        load_dataset(tmp_path / "nolabel.csv")


def test_bad_labels_stop_the_cli_before_any_model_runs(tmp_path, capsys):
    folder = tmp_path / "photos"
    for label in ("horse", "hrose", "crane"):
        (folder / label).mkdir(parents=True)
        (folder / label / "x.jpg").write_bytes(b"never read")
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(folder), "--models", "efficientnet_lite0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "hrose" in err and "horse" in err and "crane" in err and "n02012849" in err
    assert not out.exists()
    assert main(["evaluate", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_labels_explain_cli(capsys):
    assert main(["labels", "explain", "domestic", "cat"]) == 0
    text = capsys.readouterr().out
    assert "5 ImageNet-1k classes" in text and "281 tabby (n02123045)" in text
    assert main(["labels", "explain", "crane"]) == 2
    assert "n03126707" in capsys.readouterr().err


def test_cli_evaluate_on_a_csv_set(tmp_path, capsys):
    import torch

    torch.set_num_threads(2)
    horse, dog = (EVAL / r["file"] for r in manifest_rows("horse", "dog"))
    (tmp_path / "set.csv").write_text(f"file,label\n{horse},horse\n{dog},dog\n")
    out = tmp_path / "out"
    argv = ["evaluate", "--data", str(tmp_path / "set.csv"), "--allow-outside",  # the photos are in ../shared
            "--models", "efficientnet_lite0,no_such_model", "--out", str(out)]
    assert main(argv) == 1  # one model unavailable
    stdout = capsys.readouterr().out
    assert "efficientnet_lite0" in stdout and "not available" in stdout
    summary = read(out / "summary.csv")
    assert summary[0]["n"] == "2" and float(summary[0]["top5"]) >= float(summary[0]["top1"])
    assert {r["label"]: r["n_accepted"] for r in read(out / "predictions.csv")} == {"horse": "1", "dog": "118"}
    assert main(argv[:-3] + ["efficientnet_lite0", "--out", str(out)]) == 0  # resumes: nothing left to do
    assert len(read(out / "predictions.csv")) == 2

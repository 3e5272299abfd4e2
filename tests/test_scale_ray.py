"""`--engine ray` (topfive.scale) on a local Ray: the same rows and summary files as the local path on
real photos of ../shared/eval with the real EfficientNet-Lite0, bad files as per-file errors,
resumable shard by shard, and a clear error without Ray."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EVAL, SHARED

from topfive.cli import main
from topfive.eval.datasets import load_dataset
from topfive.eval.evaluate import evaluate
from topfive.output import PREDICTION_COLUMNS
from topfive.sampling import spread_evenly

pytestmark = pytest.mark.slow

PHOTOS = 24
BATCH, SHARD = 4, 8  # 25 inputs -> shards of 8, 8, 8 and 1 photos
BROKEN = "images/dog/zz_broken.jpg"
RAY_OPTIONS = ["--engine", "ray", "--batch-size", str(BATCH), "--shard-size", str(SHARD)]


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray started and stopped by the engine's own session() (the runs inside it reuse it)."""
    from topfive.scale.ray_engine import Engine, session

    with session(Engine()) as ray:
        assert ray.is_initialized()
        yield ray
    assert not ray.is_initialized()


@pytest.fixture(scope="session")
def photo_set(tmp_path_factory):
    """24 photos spread over the labels (links to ../shared/eval) and a file that is not an image, with a manifest."""
    root = tmp_path_factory.mktemp("set")
    with (EVAL / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    chosen = spread_evenly(rows, PHOTOS)
    for r in chosen:
        (root / r["file"]).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(EVAL / r["file"], root / r["file"])
    (root / BROKEN).write_bytes(b"this is not a JPEG\n")
    broken = dict(chosen[0], file=BROKEN, sha256="", label="dog")
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*chosen, broken])
    return root


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def shard_files(out):
    return sorted((out / "shards").glob("*/part-*"))


def test_classify_on_ray_is_the_local_csv_and_resumes_shard_by_shard(ray_local, photo_set, tmp_path, capsys):
    from topfive.scale.classify import classify_on_ray
    from topfive.scale.ray_engine import Engine

    models = ["-m", "efficientnet_lite0,no_such_model"]
    assert main(["classify", "-r", str(photo_set / "images"), *models, "--format", "csv", "--batch-size", str(BATCH)]) == 1
    local_csv = capsys.readouterr().out

    out = tmp_path / "out"
    # a run killed after two shards: those are kept, nothing is merged yet
    run = classify_on_ray([str(photo_set / "images")], ["efficientnet_lite0"], out, Engine(shard_size=SHARD, max_shards=2),
                          recursive=True, batch_size=BATCH)
    assert not run.complete and not (out / "predictions.csv").exists()
    assert [p.name for p in shard_files(out)] == ["part-00000.csv", "part-00000.parquet", "part-00001.csv",
                                                  "part-00001.parquet"]
    (out / "shards" / shard_files(out)[0].parent.name / "part-00000.parquet").unlink()  # and one of them lost
    kept = {p: p.stat().st_mtime_ns for p in shard_files(out) if "part-00001" in p.name}

    code = main(["classify", "-r", str(photo_set / "images"), *models, "--out", str(out), *RAY_OPTIONS])
    err = capsys.readouterr().err
    assert code == 1
    assert "no_such_model" in err and "zz_broken.jpg: not a recognised image format" in err
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # the whole shard was not computed again
    assert len(shard_files(out)) == 8
    # the same rows as the local path, byte for byte, and so as an uninterrupted run
    assert (out / "predictions.csv").read_bytes().decode() == local_csv
    rows = read_csv(out / "predictions.csv")
    assert len(rows) == 5 * PHOTOS + 1 and [r["source"] for r in rows if r["error"]] == [str(photo_set / BROKEN)]

    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    # the Parquet twin holds the local CSV's rows, typed by pyarrow's own CSV reader (empty number: null)
    types = {"rank": pa.int64(), "index": pa.int64(), "probability": pa.float64()}
    expected = pa_csv.read_csv(pa.py_buffer(local_csv.encode()), convert_options=pa_csv.ConvertOptions(
        column_types={c: types.get(c, pa.string()) for c in PREDICTION_COLUMNS}, strings_can_be_null=False))
    table = pq.read_table(out / "predictions.parquet")
    assert table.column_names == PREDICTION_COLUMNS and table.num_rows == len(rows)
    assert table.equals(expected)


def test_evaluate_on_ray_writes_the_local_result_files(ray_local, photo_set, tmp_path, capsys):
    dataset = load_dataset(photo_set)
    local = tmp_path / "local"
    report = evaluate(dataset, ["efficientnet_lite0"], local, batch_size=BATCH, log=lambda m: None)
    ray_out = tmp_path / "ray"
    code = main(["evaluate", "--data", str(photo_set), "--out", str(ray_out), *RAY_OPTIONS])
    assert code == 1  # one photo could not be used, as the local path says too
    assert "efficientnet_lite0" in capsys.readouterr().out
    for name in ["predictions.csv", "summary.csv", "per_label.csv", "calibration.csv", "severity.csv",
                 "mcnemar.csv", "failures.csv"]:
        assert (ray_out / name).read_bytes() == (local / name).read_bytes(), name
    failures = read_csv(ray_out / "failures.csv")
    assert [(f["file"], f["error"]) for f in failures] == [(BROKEN, "NotAnImage")]
    summary = read_csv(ray_out / "summary.csv")[0]
    assert summary["n"] == str(PHOTOS) and float(summary["top5"]) > 50
    import json

    written = json.loads((ray_out / "evaluate.json").read_text())
    assert written["models"] == report["models"] and written["dataset"] == report["dataset"]
    assert written["engine"] == "ray"


def test_a_local_run_folder_is_not_overwritten(photo_set, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("model,file\n")
    assert main(["evaluate", "--data", str(photo_set), "--out", str(out), *RAY_OPTIONS]) == 2
    assert "local engine" in capsys.readouterr().err
    assert (out / "predictions.csv").read_text() == "model,file\n"


def test_without_ray_the_error_says_what_to_install(photo_set, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as where it is not installed
    code = main(["classify", str(photo_set / "images"), "-r", "--out", str(tmp_path / "out"), "--engine", "ray"])
    assert code == 2
    assert "pip install 'topfive[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    code = main(["evaluate", "--data", str(photo_set), "--out", str(tmp_path / "eval"), "--engine", "ray"])
    assert code == 2
    assert "pip install 'topfive[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()  # not made, nor marked with the set's fingerprint


def test_a_bad_address_is_a_one_line_error(photo_set, tmp_path):
    """Not a traceback of Ray's, for classify and evaluate alike (a process of its own: this one may
    hold a Ray connection, which the engine would use as it is)."""
    for command in (["classify", str(photo_set / "images"), "-r"], ["evaluate", "--data", str(photo_set)]):
        done = subprocess.run([sys.executable, "-m", "topfive", *command, "--engine", "ray", "--address", "nohost:xx",
                               "--out", str(tmp_path / command[0])], check=False, capture_output=True, text=True, timeout=120)
        lines = [line for line in done.stderr.splitlines() if not line.startswith("topfive: images/")]
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert any(line.startswith("topfive: error: cannot connect to the Ray cluster at nohost:xx: ") for line in lines)


def test_a_job_that_ray_loses_is_a_failed_job_in_one_line(ray_local, photo_set):
    from topfive.scale.ray_engine import Engine, Job, JobFailed, run
    from topfive.scale.shards import Shard
    from topfive.scale.sources import classify_inputs

    inputs = classify_inputs([str(photo_set / "images")], recursive=True)[:2]
    # no preprocessing spec: every decode task raises, and Ray Data stops the dataset with its own error
    with pytest.raises(JobFailed) as e:
        run(Job("efficientnet_lite0", "onnxruntime", batch_size=2), None, inputs, [Shard(0, 0, 2, "x")], Engine(),
            lambda *a: pytest.fail("no shard can be written"))
    assert "\n" not in str(e.value) and str(e.value).startswith("AttributeError: ")  # what failed in the task


def test_actors_that_would_starve_the_decode_tasks_are_refused_before_anything_runs():
    from topfive.scale.ray_engine import Engine, JobFailed, check_fits

    check_fits(Engine(actors=1, actor_cpus=1, decode_cpus=1), 2.0)
    with pytest.raises(JobFailed, match="need 2.5 CPUs, and this Ray has 2"):
        check_fits(Engine(actors=1, actor_cpus=2, decode_cpus=0.5), 2.0)  # it used to wait for ever
    check_fits(Engine(address="ray://head:10001", actors=4, actor_cpus=8), 2.0)  # a cluster may grow


def test_workers_get_absolute_paths_and_the_rows_keep_the_names_given(photo_set, monkeypatch):
    from topfive.models import resolve
    from topfive.scale.jobs import for_workers
    from topfive.scale.ray_engine import Job, chunk_rows
    from topfive.scale.shards import Shard
    from topfive.scale.sources import classify_inputs

    monkeypatch.chdir(photo_set)
    inputs = classify_inputs(["images"], recursive=True)[:3]
    assert all(not os.path.isabs(i.id) for i in inputs)  # the rows say "images/...", as given
    sent = chunk_rows(inputs, [Shard(0, 0, 3, "x")], 2)
    assert [os.fsdecode(p) for row in sent for p in row["paths"]] == [str(photo_set / i.id) for i in inputs]

    monkeypatch.chdir(SHARED)
    card = "models/mobilenet_v2_1.0_224_quant.tflite.json"
    job = for_workers(Job(card, weights_file="w.pth", calibration="photos"), resolve(card))
    here = Path.cwd()  # ../shared resolved: it may be a link, and the working folder is where it leads
    assert (job.model, job.weights_file, job.calibration) == (str(here / card), str(here / "w.pth"),
                                                              str(here / "photos"))
    assert for_workers(Job("efficientnet_lite0"), resolve("efficientnet_lite0")).model == "efficientnet_lite0"


def test_new_contents_under_the_same_file_name_redo_the_shards(photo_set, tmp_path):
    from topfive.models import resolve
    from topfive.scale.jobs import settings
    from topfive.scale.ray_engine import Job
    from topfive.scale.shards import make_plan
    from topfive.scale.sources import classify_inputs

    inputs = classify_inputs([str(photo_set / "images")], recursive=True)
    weights = tmp_path / "weights.pth"
    job, entry = Job("efficientnet_lite0", weights_file=str(weights)), resolve("efficientnet_lite0")
    digests = []
    for contents in (b"first weights", b"other weights", b"first weights"):
        weights.write_bytes(contents)
        digests.append([s.digest for s in make_plan(tmp_path / "job", inputs, settings(job, entry), SHARD).shards])
    assert digests[0] == digests[2] and not set(digests[0]) & set(digests[1])


def test_shards_of_one_plan_never_mix_runtimes(photo_set, tmp_path):
    """The runtime "auto" resolved to is recorded in plan.json: a rerun whose shards ran on another
    counts them as not written (and run_job refuses to add others to them)."""
    from topfive.scale.shards import is_written, make_plan, with_runtime, write_shard
    from topfive.scale.sources import classify_inputs

    inputs = classify_inputs([str(photo_set / "images")], recursive=True)
    plan = with_runtime(make_plan(tmp_path, inputs, {"runtime": "auto"}, SHARD), "onnxruntime")
    first, second = plan.shards[:2]
    write_shard(plan, first, "source\na\n", {"source": "str"}, "onnxruntime")
    write_shard(plan, second, "source\nb\n", {"source": "str"}, "openvino")
    again = make_plan(tmp_path, inputs, {"runtime": "auto"}, SHARD)
    assert again.runtime == "onnxruntime" and '"runtime": "onnxruntime"' in (tmp_path / "plan.json").read_text()
    assert is_written(again, first) and not is_written(again, second)
    assert make_plan(tmp_path, inputs, {"runtime": "auto", "batch_size": 2}, SHARD).runtime == ""


def test_classify_on_ray_needs_a_folder_for_its_results(photo_set, capsys):
    assert main(["classify", str(photo_set / "images"), "--engine", "ray"]) == 2
    assert "--out DIR" in capsys.readouterr().err


def test_sources_take_globs_and_csv_lists(photo_set):
    from topfive.scale.sources import classify_inputs

    names = sorted(str(p) for p in Path(photo_set).glob("images/**/*.jpg"))
    assert [i.path for i in classify_inputs([str(photo_set / "images" / "**" / "*.jpg")])] == names
    listed = classify_inputs([str(photo_set / "manifest.csv")])
    assert len(listed) == PHOTOS + 1 and listed[-1].path.endswith("zz_broken.jpg")

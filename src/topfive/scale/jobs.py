"""What classify and evaluate on Ray share: a model's job run shard by shard into its folder, its
answers turned into the library's Prediction and Failure."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Callable

from topfive.files import sha256_file
from topfive.models import resolve
from topfive.predict import ClassScore, Failure, Prediction
from topfive.scale import ray_engine
from topfive.scale.ray_engine import Engine, Job, JobFailed
from topfive.scale.shards import Plan, make_plan, shard_size_for, todo, with_runtime, write_shard
from topfive.scale.sources import Input

Render = Callable[[list, list[Input], str], str]  # (results, their inputs, runtime) -> the shard's CSV text


def resolved(name: str):
    """The model's entry; JobFailed for an unknown model or a bad card, as when an actor cannot load it."""
    try:
        return resolve(name)
    except Exception as e:
        raise JobFailed(str(e).strip() or type(e).__name__) from e


def absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def for_workers(job: Job, entry) -> Job:
    """The job with every path absolute (weights, calibration, a card given by its path): the workers'
    folder is not the driver's. A card's short name and the inputs' ids stay as given."""
    card_path = getattr(entry, "card", None) is not None and Path(job.model).expanduser().is_file()
    return replace(job, model=absolute(job.model) if card_path else job.model,
                   weights_file=absolute(job.weights_file) if job.weights_file else None,
                   calibration=absolute(job.calibration) if job.calibration else None)


def settings(job: Job, entry) -> dict:
    """What decides the answers: the job's fields and the contents of its files (the weights file,
    the calibration photos, the card, which holds its model file's sha256), so that a file replaced
    under the same name redoes the shards."""
    from topfive.runtime.quantize import calibration_files, calibration_fingerprint

    out = job.settings()
    card = getattr(entry, "card", None)
    try:
        if job.weights_file:
            out["weights_sha256"] = sha256_file(job.weights_file)
        if job.calibration and job.runtime == "int8":  # only int8 reads the photos
            out["calibration_photos"] = calibration_fingerprint(calibration_files(job.calibration))
        if card is not None:
            out["card_sha256"] = sha256_file(card.path)
    except (OSError, ValueError) as e:  # a weights file or calibration folder that is not there
        raise JobFailed(str(e).strip() or type(e).__name__) from e
    return out


def job_folder(out: Path, job: Job) -> Path:
    """out/shards/<model>@<runtime>-<hash>: readable, and two card paths with one file name apart."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(job.model).name)[:60]
    tag = hashlib.sha256(f"{job.model}\n{job.runtime}".encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return Path(out) / "shards" / f"{name}@{job.runtime}-{tag}"


def as_results(answers: list[dict], inputs: list[Input], model: str) -> list[Prediction | Failure]:
    """The engine's answers as the local path's Prediction / Failure (the actors' ClassScores)."""
    return [Failure(item.id, model, a["error"], a["reason"]) if "error" in a
            else Prediction(item.id, model, tuple(ClassScore(**c) for c in a["top"]))
            for item, a in zip(inputs, answers)]


def run_job(job: Job, entry, inputs: list[Input], out: Path, engine: Engine, render: Render,
            schema: dict[str, str]) -> Plan:
    """Plans the job's shards and runs those not written yet (at most engine.max_shards), each shard
    written as soon as its last answer is in; `entry` is resolved(job.model). JobFailed when the
    actors cannot load or run the model, or when they run it on another runtime than the shards
    already written ("auto" resolved otherwise: the shards of one plan never mix runtimes)."""
    job = for_workers(job, entry)
    plan = make_plan(job_folder(out, job), inputs, settings(job, entry), shard_size_for(engine.shard_size, job.batch_size))
    shards = todo(plan)[: engine.max_shards]

    def on_shard(shard, answers, runtime):
        nonlocal plan
        if not plan.runtime:
            plan = with_runtime(plan, runtime)
        elif runtime != plan.runtime:
            raise JobFailed(f"ran on {runtime}, but the shards in {plan.folder} ran on {plan.runtime}: "
                            f"pin --runtime {plan.runtime}, or use a new --out")
        part = inputs[shard.start : shard.stop]
        write_shard(plan, shard, render(as_results(answers, part, entry.info.name), part, runtime), schema, runtime)

    ray_engine.run(job, entry.info.preprocess, inputs, shards, engine, on_shard)
    return plan


def complete(plans: list[Plan]) -> bool:
    return all(not todo(p) for p in plans)

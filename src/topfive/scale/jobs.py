"""What classify and evaluate on Ray share: a model's job run shard by shard into its folder, its
answers turned into the library's Prediction and Failure."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Callable

from topfive.imagenet import classes
from topfive.models import resolve
from topfive.predict import ClassScore, Failure, Prediction
from topfive.scale import ray_engine
from topfive.scale.ray_engine import Engine, Job, JobFailed
from topfive.scale.shards import Plan, make_plan, shard_size_for, todo, write_shard
from topfive.scale.sources import Input

Render = Callable[[list, list[Input], str], str]  # (results, their inputs, runtime) -> the shard's CSV text


def job_folder(out: Path, job: Job) -> Path:
    """out/shards/<model>@<runtime>-<hash>: readable, and two card paths with one file name apart."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(job.model).name)[:60]
    tag = hashlib.sha256(f"{job.model}\n{job.runtime}".encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return Path(out) / "shards" / f"{name}@{job.runtime}-{tag}"


def as_results(answers: list[dict], inputs: list[Input], model: str) -> list[Prediction | Failure]:
    """The engine's answers as the local path's Prediction / Failure, top classes as Classifier makes them."""
    table = classes()
    out: list[Prediction | Failure] = []
    for item, a in zip(inputs, answers):
        if "error" in a:
            out.append(Failure(item.id, model, a["error"], a["reason"]))
            continue
        top = tuple(ClassScore(rank + 1, i, table[i].wnid, table[i].name, v)
                    for rank, (v, i) in enumerate(zip(a["probs"], a["indices"])))
        out.append(Prediction(item.id, model, top))
    return out


def run_job(job: Job, inputs: list[Input], out: Path, engine: Engine, render: Render, schema: dict[str, str]) -> Plan:
    """Plans the job's shards and runs those not written yet (at most engine.max_shards), each shard
    written as soon as its last answer is in. JobFailed when the model cannot be resolved (unknown
    model, a bad card) or the actors cannot load or run it."""
    try:
        entry = resolve(job.model)
    except Exception as e:  # unknown model, a bad card: the job's failure, as when an actor cannot load it
        raise JobFailed(str(e).strip() or type(e).__name__) from e
    plan = make_plan(job_folder(out, job), inputs, job.settings(), shard_size_for(engine.shard_size, job.batch_size))
    shards = todo(plan)[: engine.max_shards]

    def on_shard(shard, answers, runtime):
        part = inputs[shard.start : shard.stop]
        write_shard(plan, shard, render(as_results(answers, part, entry.info.name), part, runtime), schema, runtime)

    ray_engine.run(job, entry.info.preprocess, inputs, shards, engine, on_shard)
    return plan


def complete(plans: list[Plan]) -> bool:
    return all(not todo(p) for p in plans)

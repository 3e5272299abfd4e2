"""The Ray Data pipeline: the inputs of the shards to do -> decode tasks -> model actors -> per shard,
the Predictions and Failures of its inputs in order.

A row of the dataset is one model batch (batch_size consecutive inputs of one shard): decode tasks
turn it into that batch's pixels with topfive's own decoder (the same pixels as the local path),
and each actor of the pool loads the model once, through Classifier (so make_runtime), and runs the
batches it is given. Because the batches are fixed by the shard plan, not by how Ray bundles rows,
every answer is the same whichever actor computes it and whatever else is in flight.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

from topfive.scale.shards import Shard
from topfive.scale.sources import Input

RAY_MISSING = "the ray engine needs Ray Data, an optional extra: pip install 'topfive[ray]'"


class EngineMissing(RuntimeError):
    """Ray (or its Data library) is not installed."""


class EngineUnavailable(RuntimeError):
    """Ray could not be started, or the cluster at --address could not be reached."""


class JobFailed(RuntimeError):
    """The model could not be loaded or run on the actors (unknown model, weights, a broken card),
    or Ray lost the job (an actor or task that died)."""


@dataclass(frozen=True)
class Job:
    """One model on one runtime; every field decides the answers, so all of them are in a shard's digest.
    The paths the workers get are absolute (topfive.scale.jobs.for_workers): their folder is not the driver's."""

    model: str
    runtime: str = "auto"
    device: str = "cpu"
    batch_size: int = 16
    top_k: int = 5
    decode: str = "pillow"
    draft: bool = False
    threads: int | None = None
    weights_file: str | None = None
    calibration: str | None = None

    def settings(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Engine:
    """Where and how wide the pipeline runs."""

    address: str | None = None  # a Ray cluster ("ray://host:10001", "auto"); None: a local Ray on this machine
    actors: int = 1  # model actors, each holding one copy of the model
    actor_cpus: float = 1.0
    actor_gpus: float = 0.0
    decode_cpus: float = 1.0
    shard_size: int = 256
    progress: bool = False
    max_shards: int | None = None  # stop after this many shards: a run killed half-way (tests)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the extra is ray[data]: plain ray lacks it)
    except ImportError as e:
        raise EngineMissing(f"{RAY_MISSING} ({e})") from None
    return ray


@contextmanager
def session(engine: Engine) -> Iterator[object]:
    """Ray, connected: an existing connection is used as it is; else a local Ray (or the cluster at
    engine.address) for the block. $TOPFIVE_* variables travel to the workers (auto's pin, the
    models folder), so that every actor resolves the model and runtime as this process would."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("TOPFIVE_")}}
    where = {"address": engine.address} if engine.address else {"include_dashboard": False}
    try:
        ray.init(runtime_env=env, **where)
    except (ConnectionError, ValueError, RuntimeError) as e:  # no cluster there, a malformed address
        at = f"the Ray cluster at {engine.address}" if engine.address else "a local Ray"
        raise EngineUnavailable(f"cannot connect to {at}: {one_line(e)}") from e
    try:
        yield ray
    finally:
        ray.shutdown()


def one_line(e: BaseException) -> str:
    """An exception as one line: a Ray task's error as the exception it wraps, not Ray's traceback."""
    cause = getattr(e, "cause", None)
    e = cause if isinstance(cause, BaseException) else e
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def pack(error: str, reason: str) -> bytes:
    """An (error, reason) pair as bytes: a file name that is not UTF-8 (lone surrogates) survives Arrow."""
    return f"{error}\n{reason}".encode("utf-8", "surrogatepass")


def unpack(data: bytes) -> tuple[str, str]:
    error, _, reason = data.decode("utf-8", "surrogatepass").partition("\n")
    return error, reason


def decode_chunk(row: dict, spec, decode: str, draft: bool) -> dict:
    """One model batch's inputs -> its pixels (the bytes of the decoder's batch) and per input its error."""
    from topfive.decode import make_decoder

    paths = [os.fsdecode(p) for p in row["paths"]]
    errors = list(row["problems"])
    readable = [p for p, e in zip(paths, errors) if not e]
    batch, decoded = make_decoder(decode, spec, draft=draft)(readable) if readable else (None, [])
    got = iter(decoded)
    for k, given in enumerate(errors):
        if not given:
            error = next(got)
            errors[k] = pack(type(error).__name__, error.reason) if error is not None else b""
    out = {"shard": row["shard"], "start": row["start"], "errors": errors, "pixels": b"", "shape": [], "dtype": ""}
    if batch is not None:
        pixels = batch.cpu().numpy()
        out.update(pixels=pixels.tobytes(), shape=list(pixels.shape), dtype=str(pixels.dtype))
    return out


class ModelActor:
    """Loads the model once; each call takes decoded batches and returns per input its top-k or error.
    A model that cannot be loaded or run answers every row with `fatal`, which stops the job."""

    def __init__(self, job: Job):
        from topfive.predict import Classifier

        self.top_k, self.fatal, self.clf = job.top_k, b"", None
        try:  # the decode tasks decode: the Classifier here only runs the model (Classifier.answers)
            self.clf = Classifier(job.model, runtime=job.runtime, device=job.device, batch_size=job.batch_size,
                                  weights_file=job.weights_file, calibration=job.calibration, threads=job.threads)
        except Exception as e:  # unknown model, weights unavailable, missing runtime: the job's failure
            self.fatal = pack(type(e).__name__, str(e).strip() or type(e).__name__)

    def __call__(self, table):
        import pyarrow as pa

        out = {"shard": [], "pos": [], "top": [], "error": [], "fatal": [], "runtime": []}
        runtime = getattr(self.clf.runtime, "name", "") if self.clf is not None else ""
        for row in table.to_pylist():
            answers, fatal = self.answers(row)
            for k, (top, error) in enumerate(answers):
                out["shard"].append(row["shard"])
                out["pos"].append(row["start"] + k)
                out["top"].append(top)
                out["error"].append(error)
                out["fatal"].append(fatal)
                out["runtime"].append(runtime)
        score = pa.struct([("rank", pa.int64()), ("index", pa.int64()), ("wnid", pa.string()), ("name", pa.string()),
                           ("probability", pa.float64())])
        types = {"shard": pa.int64(), "pos": pa.int64(), "top": pa.list_(score), "error": pa.binary(),
                 "fatal": pa.binary(), "runtime": pa.string()}
        return pa.table({k: pa.array(v, types[k]) for k, v in out.items()})

    def answers(self, row: dict) -> tuple[list[tuple[list[dict], bytes]], bytes]:
        """Per input (its ClassScores as dicts, its packed error), and the model's fatal error."""
        import numpy as np
        import torch

        errors = row["errors"]
        if self.fatal:
            return [([], b"")] * len(errors), self.fatal
        good = [k for k, e in enumerate(errors) if not e]
        found: dict[int, tuple[list[dict], bytes]] = {}
        if good:
            pixels = np.frombuffer(row["pixels"], dtype=row["dtype"]).reshape(row["shape"]).copy()
            try:
                tops, bad, non_finite = self.clf.answers(torch.from_numpy(pixels), self.top_k)
            except Exception as e:  # a card whose output is not what it says: the model's failure
                return [([], b"")] * len(errors), pack(type(e).__name__, str(e))
            for r, k in enumerate(good):  # a non-finite row fails alone, as in the local path
                found[k] = (([], pack(type(non_finite).__name__, non_finite.reason)) if r in bad
                            else ([asdict(c) for c in tops[r]], b""))
        return [found.get(k, ([], e)) for k, e in enumerate(errors)], b""


def chunk_rows(inputs: list[Input], shards: list[Shard], batch_size: int) -> list[dict]:
    rows = []
    for s in shards:
        for start in range(s.start, s.stop, batch_size):
            part = inputs[start : min(start + batch_size, s.stop)]
            rows.append({"shard": s.index, "start": start,
                         "paths": [os.fsencode(os.path.abspath(i.path)) if i.path else b"" for i in part],
                         "problems": [pack(*i.problem) if i.problem else b"" for i in part]})
    return rows


def check_fits(engine: Engine, cpus: float) -> None:
    """JobFailed where the actors and one decode task cannot all hold their CPUs at once on a local
    Ray: the actors would take every CPU and the decode tasks that feed them never start (Ray Data
    waits, it does not fail). A cluster (engine.address) may add nodes as it goes, so it is not checked."""
    need = engine.actors * engine.actor_cpus + engine.decode_cpus
    if engine.address is None and need > cpus:
        raise JobFailed(f"{engine.actors} actor(s) x {engine.actor_cpus:g} CPUs plus {engine.decode_cpus:g} for "
                        f"decoding need {need:g} CPUs, and this Ray has {cpus:g}: the decode tasks could never run "
                        "beside the actors (lower --actors, --actor-cpus or --decode-cpus)")


def run(job: Job, spec, inputs: list[Input], shards: list[Shard], engine: Engine,
        on_shard: Callable[[Shard, list[dict], str], None]) -> None:
    """Runs `shards` of `inputs`; as each shard's last answer arrives, on_shard(shard, answers, runtime)
    with answers in input order: {"top"} (ClassScore fields) or {"error", "reason"}. JobFailed when the
    model cannot be loaded or run, or Ray loses the job (no shard of it is then handed out)."""
    ray = import_ray()
    from ray.data import ActorPoolStrategy, DataContext

    if not shards:
        return
    check_fits(engine, ray.cluster_resources().get("CPU", 0.0))
    context = DataContext.get_current()
    context.enable_progress_bars = engine.progress
    context.raise_original_map_exception = True  # a failed task says what failed, not "UDF failed"
    rows = chunk_rows(inputs, shards, job.batch_size)
    # memory: about what one decode task holds (a worker with torch imported, ~460 MiB, and a batch of
    # full-size photos and its pixels); a remote argument the actors do not share, it also keeps Ray
    # from fusing decoding into the model actors
    memory = (768 << 20) + job.batch_size * (16 << 20)
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map(decode_chunk, fn_kwargs={"spec": spec, "decode": job.decode, "draft": job.draft},
                num_cpus=engine.decode_cpus, memory=memory)
    ds = ds.map_batches(ModelActor, fn_constructor_kwargs={"job": job}, batch_size=None, batch_format="pyarrow",
                        compute=ActorPoolStrategy(size=engine.actors), num_cpus=engine.actor_cpus,
                        num_gpus=engine.actor_gpus or None)
    pending = {s.index: {} for s in shards}
    by_index = {s.index: s for s in shards}
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for r in batch.to_pylist():
                if r["fatal"]:
                    raise JobFailed(unpack(r["fatal"])[1])
                got = pending[r["shard"]]
                got[r["pos"]] = ({"error": unpack(r["error"])[0], "reason": unpack(r["error"])[1]} if r["error"]
                                 else {"top": r["top"]})
                shard = by_index[r["shard"]]
                if len(got) == shard.stop - shard.start:
                    on_shard(shard, [got[p] for p in range(shard.start, shard.stop)], r["runtime"])
                    del pending[r["shard"]]
    except ray.exceptions.RayError as e:  # an actor or task that died, an error in Ray Data itself
        raise JobFailed(one_line(e)) from e

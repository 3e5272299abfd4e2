"""Shards: fixed slices of the input list, each written once as Parquet + CSV, skipped on a rerun.

A job's folder holds plan.json (the shards and the digest of each), part-NNNNN.csv and
part-NNNNN.parquet. A shard is written CSV first, then Parquet, each through one rename, and the
Parquet file carries the shard's digest (inputs + the settings that decide the answers): a shard
counts as written when its Parquet file exists with the planned digest and its CSV beside it, so a
killed run loses only the shards in flight and a changed input list or setting redoes just what changed.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from topfive.files import atomic_path, atomic_write
from topfive.output import writable
from topfive.scale.sources import Input, digest

DIGEST_KEY = b"topfive.digest"
RUNTIME_KEY = b"topfive.runtime"  # what ran the shard ("auto" resolved), for evaluate's runtime column


@dataclass(frozen=True)
class Shard:
    index: int
    start: int  # slice of the input list
    stop: int
    digest: str

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"


@dataclass(frozen=True)
class Plan:
    folder: Path
    settings: dict
    shards: tuple[Shard, ...]

    def parquet(self, shard: Shard) -> Path:
        return self.folder / f"{shard.name}.parquet"

    def csv(self, shard: Shard) -> Path:
        return self.folder / f"{shard.name}.csv"


def shard_size_for(shard_size: int, batch_size: int) -> int:
    """A whole number of model batches, so that a shard's batches do not depend on the others."""
    return max(1, -(-shard_size // batch_size)) * batch_size


def make_plan(folder: Path, inputs: list[Input], settings: dict, shard_size: int) -> Plan:
    """The shards of `inputs`, written to folder/plan.json."""
    shards = tuple(
        Shard(k, start, min(start + shard_size, len(inputs)), digest(inputs[start : start + shard_size], settings))
        for k, start in enumerate(range(0, len(inputs), shard_size))
    )
    plan = Plan(Path(folder), settings, shards)
    text = json.dumps({"settings": settings, "n_inputs": len(inputs), "shard_size": shard_size,
                       "shards": [asdict(s) for s in shards]}, indent=1, sort_keys=True)
    atomic_write(plan.folder / "plan.json", text + "\n", fsync=True)
    return plan


def shard_metadata(path: Path) -> dict[bytes, bytes]:
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).metadata or {}
    except (OSError, ValueError):  # missing, cut short, not Parquet: not written
        return {}


def is_written(plan: Plan, shard: Shard) -> bool:
    meta = shard_metadata(plan.parquet(shard))
    return meta.get(DIGEST_KEY) == shard.digest.encode() and plan.csv(shard).is_file()


def todo(plan: Plan) -> list[Shard]:
    return [s for s in plan.shards if not is_written(plan, s)]


def shard_runtime(plan: Plan, shard: Shard) -> str:
    return shard_metadata(plan.parquet(shard)).get(RUNTIME_KEY, b"").decode()


def typed_table(csv_text: str, schema: dict[str, str], metadata: dict[bytes, bytes]):
    """The CSV's rows as a typed Arrow table: `schema` maps a column to "str", "int" or "float";
    an empty int or float field is null (a failure's rank, index and probability)."""
    import pyarrow as pa

    reader = csv.reader(io.StringIO(csv_text, newline=""))
    header = next(reader)
    columns = list(zip(*reader)) or [()] * len(header)
    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    cast = {"str": writable, "int": int, "float": float}
    arrays = []
    for name, values in zip(header, columns):
        kind = schema[name]
        convert = cast[kind]
        arrays.append(pa.array([None if (v == "" and kind != "str") else convert(v) for v in values], types[kind]))
    return pa.Table.from_arrays(arrays, names=header).replace_schema_metadata(metadata)


def write_parquet(path: Path, csv_text: str, schema: dict[str, str], metadata: dict[bytes, bytes] | None = None) -> None:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(typed_table(csv_text, schema, metadata or {}), tmp)


def write_shard(plan: Plan, shard: Shard, csv_text: str, schema: dict[str, str], runtime: str) -> None:
    """The shard's CSV (text as the local path renders it) and then its Parquet file, each atomically."""
    atomic_write(plan.csv(shard), csv_text, fsync=True)
    write_parquet(plan.parquet(shard), csv_text, schema, {DIGEST_KEY: shard.digest.encode(), RUNTIME_KEY: runtime.encode()})


def merged_csv(plans: list[Plan]) -> str:
    """The shards of `plans`, in order, as one CSV text with one header. Nothing in it depends on
    when or in which run a shard was written, so the merged files are an uninterrupted run's."""
    header, bodies = "", []
    for plan in plans:
        for shard in plan.shards:
            text = plan.csv(shard).read_text(encoding="utf-8")
            cut = text.index("\n") + 1  # the header names no field with a line break
            header = text[:cut]
            bodies.append(text[cut:])
    return header + "".join(bodies)


def write_results(csv_text: str, schema: dict[str, str], csv_out: Path, parquet_out: Path) -> None:
    """The final CSV and its Parquet twin (the same rows, typed), each atomically."""
    atomic_write(csv_out, csv_text, fsync=True)
    write_parquet(parquet_out, csv_text, schema)

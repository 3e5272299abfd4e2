"""Shards: fixed slices of the input list, each written once as Parquet + CSV, skipped on a rerun.

A job's folder holds plan.json (the shards, the digest of each, and the runtime they ran on: what
"auto" resolved to), part-NNNNN.csv and part-NNNNN.parquet. A shard is written CSV first, then Parquet, each through one rename, and the
Parquet file carries the shard's digest (inputs + the settings that decide the answers): a shard
counts as written when its Parquet file exists with the planned digest and its CSV beside it, so a
killed run loses only the shards in flight and a changed input list or setting redoes just what changed.
The final files are streamed from the shards, one shard in memory at a time.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Callable, Iterable

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
    runtime: str = ""  # what every shard ran on ("auto" resolved); "" until the first is written

    def parquet(self, shard: Shard) -> Path:
        return self.folder / f"{shard.name}.parquet"

    def csv(self, shard: Shard) -> Path:
        return self.folder / f"{shard.name}.csv"


def shard_size_for(shard_size: int, batch_size: int) -> int:
    """A whole number of model batches, so that a shard's batches do not depend on the others."""
    return max(1, -(-shard_size // batch_size)) * batch_size


def make_plan(folder: Path, inputs: list[Input], settings: dict, shard_size: int) -> Plan:
    """The shards of `inputs`, written to folder/plan.json; the runtime of an earlier plan with the
    same settings is kept, so that its shards count as written only if they ran on it."""
    shards = tuple(
        Shard(k, start, min(start + shard_size, len(inputs)), digest(inputs[start : start + shard_size], settings))
        for k, start in enumerate(range(0, len(inputs), shard_size))
    )
    before = read_plan(Path(folder))
    runtime = before.get("runtime", "") if before.get("settings") == settings else ""
    plan = Plan(Path(folder), settings, shards, runtime)
    write_plan(plan)
    return plan


def read_plan(folder: Path) -> dict:
    try:
        return json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_plan(plan: Plan) -> None:
    n_inputs = plan.shards[-1].stop if plan.shards else 0
    shard_size = plan.shards[0].stop - plan.shards[0].start if plan.shards else 0
    text = json.dumps({"settings": plan.settings, "n_inputs": n_inputs, "shard_size": shard_size,
                       "runtime": plan.runtime, "shards": [asdict(s) for s in plan.shards]}, indent=1, sort_keys=True)
    atomic_write(plan.folder / "plan.json", text + "\n", fsync=True)


def with_runtime(plan: Plan, runtime: str) -> Plan:
    """The plan with the runtime its first shard ran on, recorded in plan.json."""
    plan = replace(plan, runtime=runtime)
    write_plan(plan)
    return plan


def shard_metadata(path: Path) -> dict[bytes, bytes]:
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).metadata or {}
    except (OSError, ValueError):  # missing, cut short, not Parquet: not written
        return {}


def is_written(plan: Plan, shard: Shard) -> bool:
    meta = shard_metadata(plan.parquet(shard))
    ran_on = not plan.runtime or meta.get(RUNTIME_KEY) == plan.runtime.encode()
    return meta.get(DIGEST_KEY) == shard.digest.encode() and ran_on and plan.csv(shard).is_file()


def todo(plan: Plan) -> list[Shard]:
    return [s for s in plan.shards if not is_written(plan, s)]


def arrow_type(kind: str):
    import pyarrow as pa

    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}[kind]


def typed_table(csv_text: str, schema: dict[str, str], metadata: dict[bytes, bytes]):
    """The CSV's rows as a typed Arrow table: `schema` maps a column to "str", "int" or "float";
    an empty int or float field is null (a failure's rank, index and probability)."""
    import pyarrow as pa

    reader = csv.reader(io.StringIO(csv_text, newline=""))
    header = next(reader)
    columns = list(zip(*reader)) or [()] * len(header)
    types = {kind: arrow_type(kind) for kind in ("str", "int", "float")}
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


def merge_csv(plans: list[Plan], path: Path, rows: Callable[[IO[str]], Iterable[str]] | None = None,
              header: str | None = None) -> None:
    """The shards of `plans`, in order, streamed into one CSV file with one header (atomically):
    each shard's lines as they are, or the lines `rows` makes of its file (opened as text), under
    `header`. Nothing in it depends on when or in which run a shard was written, so the merged
    file is an uninterrupted run's."""
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        if header is not None:
            out.write(header.encode("utf-8"))
        for plan in plans:
            for shard in plan.shards:
                if rows is not None:
                    with open(plan.csv(shard), encoding="utf-8", newline="") as f:
                        out.writelines(line.encode("utf-8") for line in rows(f))
                    continue
                with open(plan.csv(shard), "rb") as f:
                    first = f.readline()  # the header names no field with a line break
                    if header is None:
                        header = first.decode("utf-8")
                        out.write(first)
                    shutil.copyfileobj(f, out)
        out.flush()
        os.fsync(out.fileno())


def merge_parquet(plans: list[Plan], path: Path, schema: dict[str, str], where=None) -> None:
    """The shards' Parquet files, in order, as one Parquet file (a row group per shard, atomically):
    the columns of `schema`, the rows `where(table)` keeps (an Arrow mask; default all)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = pa.schema([(name, arrow_type(kind)) for name, kind in schema.items()])
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, columns) as writer:
        for plan in plans:
            for shard in plan.shards:
                table = pq.read_table(plan.parquet(shard)).replace_schema_metadata(None)
                if where is not None:
                    table = table.filter(where(table))
                writer.write_table(table.select(list(schema)))

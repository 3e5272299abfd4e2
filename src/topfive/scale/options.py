"""The command-line options of `--engine ray`, shared by classify and evaluate (argparse only: no Ray,
no torch, so that `topfive --help` stays light)."""

from __future__ import annotations

import argparse

ENGINES = ("local", "ray")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_engine_options(p, out: bool = False) -> None:
    """--engine, --address, --actors, --actor-cpus, --actor-gpus, --shard-size (and --out for classify)."""
    g = p.add_argument_group("distributed run (--engine ray; pip install 'topfive[ray]'; docs/scale-out.md)")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local (default): this process; ray: Ray Data, decoding in parallel tasks and the model "
                   "in a pool of actors, results as Parquet and CSV shards (a rerun skips those written)")
    g.add_argument("--address", metavar="ADDR",
                   help="the Ray cluster to run on (e.g. ray://head:10001 or auto); default: a local Ray on this machine")
    g.add_argument("--actors", type=positive, default=1, metavar="N",
                   help="model actors, each loading the model once (default: 1)")
    g.add_argument("--actor-cpus", type=float, default=1.0, metavar="C",
                   help="CPUs each model actor reserves (num_cpus: where Ray places it; the runtime's threads are "
                   "--threads; default: 1)")
    g.add_argument("--actor-gpus", type=float, default=0.0, metavar="G",
                   help="GPUs each model actor reserves (num_gpus; with --device cuda; default: 0)")
    g.add_argument("--shard-size", type=positive, default=256, metavar="N",
                   help="photos per shard, rounded up to whole batches (default: 256)")
    if out:
        g.add_argument("--out", "-o", metavar="DIR",
                       help="with --engine ray: the folder for predictions.csv and predictions.parquet "
                       "(the columns of --format csv) and the shards")


def engine_from(args, progress: bool = False):
    from topfive.scale.ray_engine import Engine

    return Engine(address=args.address, actors=args.actors, actor_cpus=args.actor_cpus, actor_gpus=args.actor_gpus,
                  shard_size=args.shard_size, progress=progress)

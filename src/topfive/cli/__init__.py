"""The `topfive` command: parse arguments, call the library, print. Each command is one module here;
heavy imports happen inside the command functions, so `topfive --help` answers without loading torch."""

from __future__ import annotations

import argparse
import os
import sys

from topfive.cli import bench, classify, evaluate, explain, labels, models, report, serve, tune
from topfive.cli.common import MODELS_DIR_HELP

COMMANDS = (classify, models, evaluate, labels, bench, report, tune, explain, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topfive",
        description="Classify images with ImageNet-1k CNNs and compare architectures honestly.",
    )
    parser.add_argument("--version", action="version", version="topfive 0.1.0")
    parser.add_argument(
        "--models-dir", metavar="DIR", help=MODELS_DIR_HELP
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for command in sub.choices.values():  # also accepted after the command name
        command.add_argument("--models-dir", metavar="DIR", default=argparse.SUPPRESS, help=MODELS_DIR_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune.show_library_notes()  # e.g. which runtime auto measured and picked, on stderr
    if args.models_dir:
        os.environ["TOPFIVE_MODELS_DIR"] = args.models_dir
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("topfive: interrupted", file=sys.stderr)
        return 130

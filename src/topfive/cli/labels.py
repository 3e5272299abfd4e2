"""`topfive labels explain`: what a label means in ImageNet-1k classes."""

from __future__ import annotations

import sys

from topfive.cli.common import fail


def add_parser(sub) -> None:
    p = sub.add_parser("labels", help="what a label means in ImageNet-1k classes",
                       description="Labels: ImageNet class names, wnids, indices, or WordNet concepts.")
    lsub = p.add_subparsers(title="commands", metavar="COMMAND")
    e = lsub.add_parser("explain", help="print the ImageNet-1k classes a label expands to",
                        description="Print the set of ImageNet-1k classes a label (class name, wnid, index or "
                        "broader WordNet noun such as `dog`) expands to, and the WordNet senses passed over.")
    e.add_argument("label", nargs="+", help="the label (several words are joined: labels explain domestic cat)")
    e.set_defaults(run=run)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def run(args) -> int:
    from topfive.eval.wordnet import LabelError, explain

    try:
        sys.stdout.write(explain(" ".join(args.label)))
    except LabelError as e:
        return fail(str(e))
    return 0

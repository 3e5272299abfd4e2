"""`topfive models`: list the models, or fetch model-card files."""

from __future__ import annotations

import sys

from topfive.cli.common import fail, models_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list available models",
        description="List every model with its parameters, GMACs, published ImageNet-1k accuracy, "
        "weight file size, input size and whether its weights are here (cached, packaged, local) "
        "or need a download.",
    )
    p.add_argument("--all-weights", action="store_true", help="list every weights variant, not only the default")
    p.add_argument("--format", "-f", choices=["table", "json", "csv"], default="table", help="output format")
    p.add_argument("--dir", metavar="DIR", help="list the model cards (<model file>.json) in this folder instead")
    p.add_argument(
        "--fetch", type=models_arg, metavar="NAMES",
        help="comma-separated card models (short names or card paths) to download, or copy from --models-dir, "
        "into the cache ($TOPFIVE_CACHE or ~/.cache/topfive/models), checking each sha256",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    from topfive import output

    if args.fetch:
        from topfive.models.cards import CardError, card_entry, mirror

        failed = 0
        for name in args.fetch:
            try:
                for path in mirror(card_entry(name).card):
                    print(f"{name}: {path}")
            except (CardError, ValueError, OSError) as e:  # OSError: e.g. a cache or mirror we may not write
                print(f"topfive: {name}: {e}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    if args.dir:
        from topfive.models.cards import CardEntry, CardError, cards_in

        try:
            entries = [CardEntry(card) for card in cards_in(args.dir)]
        except CardError as e:
            return fail(str(e))
    else:
        from topfive.models import all_entries

        entries = all_entries(include_all_weights=args.all_weights)
    sys.stdout.write(output.render_models(entries, args.format))
    return 0

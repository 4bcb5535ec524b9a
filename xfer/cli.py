"""The `xfer` command line: `xfer weights fetch NAME` and `xfer data fetch NAME` fill caches while online."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from xfer.data.datacli import add_data_parser
from xfer.inits.published import PUBLISHERS, PublishedWeights, published_weights
from xfer.inits.weights import fetch_weights
from xfer.models import is_known_model, known_models, model_spec
from xfer.source import parse_source


def sources_named(name: str) -> list[str]:
    """A published source (torchvision:…, timm:…, xrv:…) as is; a model name → its default sources."""
    source = parse_source(name)
    if source.kind == "published" and not source.is_default_published:
        return [name]
    if not is_known_model(name):
        raise SystemExit(f"xfer weights: {name!r} is neither a published source "
                         f"({', '.join(k + ':NAME' for k in PUBLISHERS)}) "
                         f"nor a model ({known_models()})")
    spec = model_spec(name)
    sources = [s for s in (spec.imagenet_source, spec.xray_source) if s]
    if not sources:
        raise SystemExit(f"xfer weights: model {name!r} has no published weights; pretrain it with a stage")
    return sources


def describe(published: PublishedWeights) -> str:
    state = "cached " if published.cache_path.is_file() else "missing"
    return f"{state}  {published.source}  {published.cache_path}  ({published.url})"


def weights_fetch(args: argparse.Namespace) -> int:
    failed = 0
    for source in [s for name in args.names for s in sources_named(name)]:
        try:
            print(describe(fetch_weights(source)))
        except Exception as e:  # network errors come in many types; report each source and go on
            failed += 1
            print(f"failed   {source}: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


def weights_where(args: argparse.Namespace) -> int:
    for source in [s for name in args.names for s in sources_named(name)]:
        print(describe(published_weights(source)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xfer", description="transfer-learning experiments on chest X-rays")
    commands = parser.add_subparsers(dest="command", required=True)
    weights = commands.add_parser("weights", help="published pretrained weights")
    actions = weights.add_subparsers(dest="action", required=True)
    names_help = "published source (torchvision:resnet18.IMAGENET1K_V1, timm:resnet10t.c3_in1k, " \
                 "xrv:densenet121-res224-chex) or a model name (its default sources)"
    fetch = actions.add_parser("fetch", help="download into the libraries' own caches (needs internet)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=names_help)
    fetch.set_defaults(run=weights_fetch)
    where = actions.add_parser("where", help="show each weight file's cache path and whether it is there")
    where.add_argument("names", nargs="+", metavar="NAME", help=names_help)
    where.set_defaults(run=weights_where)
    add_data_parser(commands)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

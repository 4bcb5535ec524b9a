"""`xfer data list` and `xfer data fetch NAME… | --for STUDY.yaml`: the catalogued datasets in the data root."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xfer.data.catalog import CATALOG, catalog_entry
from xfer.data.fetch import check_dataset, fetch_dataset
from xfer.data.root import DATA_ENV, data_root, explicit_data_root, set_data_root
from xfer.source import parse_source


def describe_root() -> str:
    how = f"{DATA_ENV} / --data-root" if explicit_data_root() else \
        f"default; set {DATA_ENV} or --data-root to choose"
    return f"data root: {data_root()} -> {os.path.abspath(data_root())} ({how})"


def data_list(args: argparse.Namespace) -> int:
    print(describe_root())
    for entry in CATALOG.values():
        print(check_dataset(entry, data_root(), deep=args.verify).line())
    return 0


def data_fetch(args: argparse.Namespace) -> int:
    names = list(args.names) + [n for study in args.studies for n in datasets_for_study(study)]
    if not names:
        raise SystemExit("xfer data fetch: name datasets (see `xfer data list`) or give --for STUDY.yaml")
    unknown = [n for n in names if n not in CATALOG]
    if args.studies and unknown:
        print(f"not in the catalogue, skipped: {', '.join(unknown)}", file=sys.stderr)
        names = [n for n in names if n in CATALOG]
    print(describe_root(), file=sys.stderr)
    failed = 0
    for name in dict.fromkeys(names):
        try:
            state = fetch_dataset(catalog_entry(name), data_root())
        except Exception as e:  # network and git errors come in many types; report each dataset and go on
            failed += 1
            print(f"failed      {name}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        failed += state.state != "present"
        print(state.line())
    return 1 if failed else 0


def add_data_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `data` command and its actions, added to the `xfer` parser's subcommands."""
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--data-root", metavar="DIR", help=f"where datasets live (default: ${DATA_ENV}, else "
                      "../shared/data if it exists, else ~/.cache/xfer/data)")
    data = subparsers.add_parser("data", help="the public datasets the studies use")
    actions = data.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[root],
                                 help="each catalogued dataset: present, missing or incomplete")
    listing.add_argument("--verify", action="store_true", help="also check every fetched file's sha256")
    listing.set_defaults(run=run_with_root(data_list))
    fetch = actions.add_parser("fetch", parents=[root], help="download, prepare and verify (needs internet)")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"catalogued dataset: {', '.join(CATALOG)}")
    fetch.add_argument("--for", dest="studies", action="append", default=[], metavar="STUDY.yaml",
                       help="every dataset a study (and its stage recipes) reads")
    fetch.set_defaults(run=run_with_root(data_fetch))


def run_with_root(handler):
    """The handler, run after `--data-root` has set the data root (XFER_DATA, which Ray workers inherit)."""
    def run(args: argparse.Namespace) -> int:
        if args.data_root:
            set_data_root(args.data_root)
        root = data_root()
        if root.exists() and not root.is_dir():
            raise SystemExit(f"xfer data: the data root {root} is a file, not a folder; give --data-root (or "
                             f"{DATA_ENV}) a folder, which fetch creates if missing")
        return handler(args)
    return run


def datasets_for_study(path: Path, _seen: tuple[str, ...] = ()) -> list[str]:
    """Dataset folder names a study or stage recipe reads, its `stage:NAME` recipes' included."""
    from xfer.load import read_yaml
    from xfer.stages import find_recipe, recipe_dirs

    raw = read_yaml(Path(path))
    names = [Path(str(ds.get("root", ""))).name for ds in (raw.get("data") or {}).get("datasets") or []]
    inits = (raw.get("trials") or {}).get("init") or [raw.get("init") or {}]
    for init in inits:
        source = parse_source(str((init or {}).get("source") or ""))
        if source.kind == "stage" and source.name not in _seen:
            recipe = find_recipe(source.name, recipe_dirs(Path(path)))
            names += datasets_for_study(recipe, (*_seen, source.name))
    return list(dict.fromkeys(n for n in names if n))

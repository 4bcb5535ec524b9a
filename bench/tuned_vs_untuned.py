"""Tuned vs untuned arms of one study design: two study output folders (e.g. outputs/init_study and
outputs/init_study_tuned, same data, seeds and test set; one with a tuning phase) → a markdown table of test AUC
per init × n from each report's leaderboard, the chosen learning rate, and every verdict that differs.

`python bench/tuned_vs_untuned.py UNTUNED_FOLDER TUNED_FOLDER`"""
import json
import sys
from pathlib import Path

import pandas as pd


def table(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "report" / "tables" / f"{name}.csv", dtype={"n_per_class": str})


def cell(row) -> str:
    collapsed = f", {int(row.collapsed)} collapsed" if row.collapsed else ""
    return f"{row.test_auc:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]{collapsed}"


def main(untuned: Path, tuned: Path) -> None:
    a, b = table(untuned, "leaderboard"), table(tuned, "leaderboard")
    recipes = {(r["init"], str(r["n_per_class"])): r["values"] for r in
               json.loads((tuned / "tuning_recipes.json").read_text())}
    both = a.merge(b, on=["init", "model", "n_per_class"], suffixes=("_u", "_t"))
    print("| init | n | untuned test AUC [95% CI] | tuned lr | tuned test AUC [95% CI] | Δ vs random untuned → tuned | verdict untuned → tuned |")
    print("|---|---|---|---|---|---|---|")
    for _, r in both.iterrows():
        u = r.filter(like="_u").rename(lambda c: c[:-2])
        t = r.filter(like="_t").rename(lambda c: c[:-2])
        lr = recipes.get((r["init"], r["n_per_class"]), {}).get("train.lr", float("nan"))
        diff = (f"{u.diff_vs_random:+.3f} → {t.diff_vs_random:+.3f}" if pd.notna(u.diff_vs_random) else "—")
        print(f"| {r['init']} | {r['n_per_class']} | {cell(u)} | {lr:g} | {cell(t)} | {diff} | "
              f"{u.verdict if isinstance(u.verdict, str) else '—'} → {t.verdict if isinstance(t.verdict, str) else '—'} |")
    va, vb = table(untuned, "verdicts"), table(tuned, "verdicts")
    changed = va.merge(vb, on=["hypothesis", "comparison"], suffixes=("_untuned", "_tuned"))
    changed = changed[changed["verdict_untuned"] != changed["verdict_tuned"]]
    print(f"\nhypothesis verdicts that differ ({len(changed)} of {len(va)} compared):")
    for _, r in changed.iterrows():
        print(f"- {r['hypothesis']} {r['comparison']}: {r['verdict_untuned']} ({r['estimate_untuned']:+.3f}) → "
              f"{r['verdict_tuned']} ({r['estimate_tuned']:+.3f})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

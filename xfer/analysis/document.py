"""Turn a finished analysis into report.html, its PNG figures and CSV tables in one folder."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from xfer.analysis import figures, html
from xfer.analysis.answer import answer_lines
from xfer.analysis.collect import StudyRuns, n_order, sort_by_n
from xfer.analysis.convergence import convergence_table
from xfer.analysis.hypotheses import ADJUSTMENT, CLAIMS, Verdict, study_size, verdict_table
from xfer.analysis.probe_images import AnalysisImages
from xfer.analysis.leaderboard import leaderboard, t_interval, with_report_verdicts
from xfer.analysis.leaderboard_section import leaderboard_section
from xfer.analysis.paired import positive_class
from xfer.analysis.probes import ProbeResults
from xfer.analysis.shortcut import WARN_AUC, ShortcutResult


@dataclass
class Analysis:
    """Everything the report shows; `notes` say why a section has nothing (missing inputs)."""

    study: StudyRuns
    trials: pd.DataFrame  # finished trials with epochs_to_* columns
    verdicts: list[Verdict]
    ensembles: pd.DataFrame
    confusion: dict[str, np.ndarray]
    probes: ProbeResults | None = None
    images: AnalysisImages | None = None
    shortcut: ShortcutResult | None = None
    notes: dict[str, str] = field(default_factory=dict)
    margin: float = 0.05  # AnalysisConfig.equivalence_margin
    alpha: float = 0.05  # AnalysisConfig.alpha: the report's family-wise error rate
    power: float = 0.8  # AnalysisConfig.power: the power each minimum detectable effect is computed for
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)  # run_id → its test predictions


def auc_summary(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's test AUC per init, model and n: mean and 95% CI over arms (the numbers of leaderboard.csv;
    a cross-validated arm is its pooled folds, never one fold), and best validation AUC."""
    out = board[["init", "model", "n_per_class", "runs", "trials", "test_auc", "ci_low", "ci_high", "best_val_auc"]]
    return sort_by_n(out.rename(columns={"runs": "arms"}))


def per_class_table(trials: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """One row per trial (with its MLflow run id): test precision, recall, F1 and one-vs-rest AUC of every class."""
    metrics = ("precision", "recall", "f1", "auc")
    rows = [{"trial": t["trial_key"], "run id": t["run_id"],
             **{f"{c} {m}": t.get(f"test_{m}_{c}", np.nan) for c in classes for m in metrics}}
            for _, t in trials.sort_values("trial_key").iterrows()]
    return pd.DataFrame(rows)


def per_class_auc(trials: pd.DataFrame, confusion: dict[str, np.ndarray], classes: tuple[str, ...]) -> pd.DataFrame:
    """Per init × model × n and class: one-vs-rest test AUC, mean and 95% t interval over its trials, and how many
    of its trials never predicted that class (argmax) on the test set."""
    rows = []
    groups = sorted(trials.groupby(["init", "model", "n_per_class"]), key=lambda kv: (kv[0][1], kv[0][0], n_order(kv[0][2])))
    for (init, model, n), g in groups:
        for k, c in enumerate(classes):
            mean, low, high, _ = t_interval(g.get(f"test_auc_{c}", pd.Series(np.nan, index=g.index)).to_numpy())
            matrices = [np.asarray(confusion[r]) for r in g["run_id"] if r in confusion]
            never = sum(int(m[:, k].sum() == 0) for m in matrices)
            rows.append({"init": init, "model": model, "n_per_class": n, "class": c, "trials": len(g),
                         "AUC (one vs rest)": mean,
                         "95% CI": "–" if np.isnan(low) else f"[{max(low, 0.0):.3f}, {min(high, 1.0):.3f}]",
                         "never predicted in": f"{never} of {len(matrices)} trials" if never else ""})
    return pd.DataFrame(rows)


def confusion_tables(trials: pd.DataFrame, confusion: dict[str, np.ndarray], classes: tuple[str, ...]) -> str:
    parts = []
    for _, t in trials.sort_values("trial_key").iterrows():
        if t["run_id"] in confusion:
            frame = pd.DataFrame(confusion[t["run_id"]], index=[f"true {c}" for c in classes],
                                 columns=[f"predicted {c}" for c in classes]).reset_index(names="")
            parts.append(f"<h4>{escape(t['trial_key'])} (run {escape(t['run_id'])})</h4>{html.table(frame)}")
    return html.details(f"Confusion matrices of {len(parts)} trials (rows: true class)", "".join(parts))


def shortcut_part(result: ShortcutResult | None, why_missing: str) -> str:
    if result is None:
        return html.note(why_missing)
    counts = pd.DataFrame(result.counts).T.reset_index(names="source")
    text = (f"Predicting the source dataset ({', '.join(result.sources)}) from the image alone: "
            f"test AUC {result.source_auc:.3f} on {result.n_test} images ({result.reason}).")
    if not result.applicable:
        return html.note(f"Shortcut probe not applicable: {result.reason}.") + html.table(counts)
    verdict = (html.warning(f"{text} The source is predictable (AUC ≥ {WARN_AUC}); where classes come from "
                            "different sources, the model may learn the source instead of the disease "
                            "(the COVIDx critique).") if result.warning else html.paragraph(text))
    return verdict + html.paragraph("Images per source and class:") + html.table(counts)


def render_figures(a: Analysis, board: pd.DataFrame, folder: Path) -> dict[str, Path | None]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path | None] = {
        "curves": figures.learning_curves(a.study.histories, a.trials, folder / "learning_curves.png"),
        "auc_vs_n": figures.auc_vs_n(board, a.trials, folder / "auc_vs_n.png"),
        "cka": None, "gradcam": None, "tsne": None}
    p, images = a.probes, a.images
    if p is not None and not p.cka.empty:
        out["cka"] = figures.cka_by_depth(p.cka, folder / "cka_by_depth.png")
    if p is not None and p.gradcam and images is not None:
        out["gradcam"] = figures.gradcam_grid(images.test_images[images.explain], images.test_labels[images.explain],
                                              p.gradcam, p.probs, a.study.classes, folder / "gradcam_grid.png")
    if p is not None and p.tsne and images is not None:
        out["tsne"] = figures.tsne_panels(p.tsne, images.test_labels, a.study.classes, folder / "tsne.png")
    return out


def design_lines(a: Analysis) -> str:
    """The report's first lines: test-set size, seeds, and how many comparisons decided what."""
    size = study_size(a.verdicts)
    counts = pd.Series([v.verdict for v in a.verdicts]).value_counts()
    tally = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    pooled = ", all folds together" if "fold" in a.trials else ""
    test = (f"Test set: {size['images']} images from {size['patients']} patients{pooled}" if size["images"] else
            "Test set: size unknown (no test-image predictions were analysed, so no test-AUC comparison was made)")
    seeds = f"{size['seeds']} seed{'' if size['seeds'] == 1 else 's'}"
    return html.paragraph(f"{test}; {seeds} (× repeats) per comparison at most. The hypotheses below make "
                          f"{len(a.verdicts)} comparisons, {ADJUSTMENT}-adjusted at family-wise α = {a.alpha:g}: {tally}. Each states "
                          f"its minimum detectable effect (mde, {a.power:.0%} power); a comparison the Holm-adjusted test does not "
                          f"decide is 'underpowered' when its mde is above the margin (a miss says little), else "
                          f"'inconclusive'.")


def answer_part(board: pd.DataFrame, a: Analysis) -> str:
    """The first lines of the report: who won at each n, by how much over random, and whether the study could tell."""
    classes = a.study.classes
    positive = classes[positive_class(a.trials, classes)]
    auc = ("test AUC: the macro mean of the one-vs-rest AUCs of " + ", ".join(classes) if len(classes) > 2 else
           f"test AUC: {positive} vs {', '.join(c for c in classes if c != positive)}")
    lines = "".join(f"<li>{escape(line)}</li>" for line in answer_lines(board))
    return f"<div class='answer'><p><b>Answer</b> ({escape(auc)}):</p><ul>{lines}</ul></div>"


def tuning_section(folder: Path) -> str:
    """The tuning phase's chosen recipe per arm (cell) with its configurations and ASHA stops, and validation AUC
    against learning rate per init and n: does a verdict hang on the recipe? Empty for a study without one."""
    recipes_file, trials_file = folder.parent / "tuning_recipes.json", folder.parent / "tuning_trials.csv"
    if not recipes_file.is_file():
        return ""
    recipes = pd.DataFrame([{"init": r["init"], "model": r["model"], "n per class": str(r["n_per_class"]), **r["values"]}
                            for r in json.loads(recipes_file.read_text())])
    if trials_file.is_file():
        trials = pd.read_csv(trials_file)
        counts = trials.groupby(["init", "model", "n_per_class"]).agg(
            configurations=("outcome", "size"), stopped_early=("outcome", lambda o: int((o == "stopped early").sum())),
            best_validation=("tuning_score", "max")).reset_index().rename(columns={
                "n_per_class": "n per class", "stopped_early": "stopped early (ASHA)",
                "best_validation": "best validation AUC"})
        recipes = recipes.merge(counts.astype({"n per class": str}), on=["init", "model", "n per class"], how="left") \
            if len(counts) else recipes
    figure = folder.parent / "tuning_sensitivity.png"
    shown = None
    if figure.is_file():
        shown = folder / "figures" / figure.name
        shown.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(figure, shown)
    return html.section("Tuned recipes (chosen on validation, tuning seeds only)",
                        html.paragraph("Each (init, model, n) cell trained its evaluation trials with the values its "
                                       "tuning phase chose: the best mean validation AUC over the tuning seeds among "
                                       "the configurations that ran to the end (ASHA stops the weak ones early). The "
                                       "test set was not read while tuning."),
                        html.table(recipes.astype({"n per class": str})),
                        html.figure(shown, "Validation AUC vs learning rate per init, one panel per n (x: "
                                           "stopped early)", folder) if shown else "")


def waves_section(folder: Path) -> str:
    """How the seed waves went: per wave and n, the seeds, the least precise comparison's mde and what the rule
    did next. Empty for a study with fixed seeds."""
    from xfer.waves import WAVES_ARTIFACT, WaveStep

    record = folder.parent / WAVES_ARTIFACT
    if not record.is_file():
        return ""
    saved = json.loads(record.read_text())
    waves, rule = saved["waves"], saved.get("rule") or {}
    target = (f" (≤ {rule['until_mde']:g} AUC; {rule['min']}–{rule['max']} seeds"
              + (f", {rule['budget_minutes']:g} min" if rule.get("budget_minutes") else "") + ")") if rule else ""
    rows = [{"wave": w["wave"], "n per class": s["n_per_class"], "seeds": s["seeds"], "mde": s["mde"],
             "next": WaveStep(**s).why} for w in waves for s in w["steps"]]
    last = {s["n_per_class"]: WaveStep(**s) for s in waves[-1]["steps"]} if waves else {}
    ending = "; ".join(f"n = {n}: {step.seeds} seeds, {step.why}" for n, step in last.items())
    return html.section(f"Seed waves ({len(waves)} wave{'s' if len(waves) != 1 else ''})",
                        html.paragraph("Seeds were added per n in waves until every comparison with the baseline "
                                       f"at that n had a minimum detectable effect at most the study's target{target}, "
                                       "the maximum seeds, or the time budget. The rule reads standard errors only, "
                                       f"never estimates or p-values. Stopped: {ending}."),
                        html.table(pd.DataFrame(rows)))


def write_report(a: Analysis, folder: Path) -> Path:
    """Write figures/*.png, tables/*.csv and report.html into `folder`; returns the HTML path."""
    board = with_report_verdicts(leaderboard(a.trials, predictions=a.predictions), a.verdicts)  # the answer's table
    figs = render_figures(a, board, folder / "figures")
    tables = {"verdicts": verdict_table(a.verdicts), "auc": auc_summary(board), "leaderboard": board,
              "convergence": convergence_table(a.trials), "ensembles": a.ensembles,
              "per_class": per_class_table(a.trials, a.study.classes),
              "per_class_auc": per_class_auc(a.trials, a.confusion, a.study.classes),
              "model_cost": a.probes.cost if a.probes else pd.DataFrame(),
              "cka": a.probes.cka if a.probes else pd.DataFrame(),
              "cka_floor": a.probes.cka_floor if a.probes else pd.DataFrame()}
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / "tables" / f"{name}.csv", index=False)
    s, t = a.study, a.trials
    why = a.notes.get("probes", "no trained-model probes were run")
    verdicts = tables["verdicts"].drop(columns=["claim"], errors="ignore")
    runs_word = "trials (each fold of each seed one trial)" if "fold" in t else "seeds"  # folds are never seeds
    asked = verdicts["estimate"].notna() if "estimate" in verdicts else pd.Series(True, index=verdicts.index)
    body = [
        answer_part(board, a),
        leaderboard_section(t, a.verdicts, a.confusion, a.study.classes, folder, a.predictions),  # the answer first
        design_lines(a),
        html.paragraph(f"Experiment {s.experiment!r} at {s.tracking_uri}; {len(t)} finished trials, "
                       f"{len(s.failed)} not finished{f' ({s.selection})' if s.selection else ''}. Inits: {', '.join(sorted(t['init'].unique()))}; models: "
                       f"{', '.join(sorted(t['model'].unique()))}; n per class: "
                       f"{', '.join(sorted(t['n_per_class'].unique(), key=n_order))}; seeds: "
                       f"{', '.join(map(str, sorted(t['seed'].unique())))}. Built "
                       f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC."),
        html.warning("the source dataset is predictable from the image (see Shortcut probe).")
        if a.shortcut is not None and a.shortcut.warning else "",
        html.section("Hypotheses (Transfusion, Raghu et al. 2019)",
                     html.paragraph("Effects are paired differences (same model, n and seed unless stated). "
                                    "Test-AUC differences are scored on the same test images: their 95% t interval "
                                    "resamples test patients within class (DeLong) and seeds/repeats as clusters. "
                                    "Convergence (epochs to 90% of each run's own val AUC gain over 0.5: speed, "
                                    "not plateau height; runs that never learned are left out and named) and "
                                    "feature reuse (Δ debiased CKA, pretrained − its mean-var control where the "
                                    "study has one, else random init; supported only beyond the CKA margin) use "
                                    "t intervals over seeds. Verdicts use "
                                    f"{ADJUSTMENT}-adjusted p-values over all {len(a.verdicts)} comparisons; the "
                                    f"mde column is the minimum detectable effect at {a.power:.0%} power. Margins: "
                                    f"±{a.margin} AUC for 'comparable' and 'not worse' and for power. Inits "
                                    "with identical initial weights are not compared."),
                     "".join(f"<p><b>{h}</b>: {escape(c)}</p>" for h, c in CLAIMS.items()),
                     html.table(verdicts[asked], row_class="verdict"),
                     html.details(f"{int((~asked).sum())} comparison(s) this study cannot make (a strategy, "
                                  "prediction or measurement it lacks)", html.table(verdicts[~asked]))
                     if (~asked).any() else ""),
        tuning_section(folder),
        waves_section(folder),
        html.section("Learning curves", html.figure(figs["curves"], f"Validation AUC vs epoch, mean ± SD over "
                                                    f"{runs_word}, one panel per n per class", folder)),
        html.section("AUC vs n", html.figure(figs["auc_vs_n"], "Test AUC vs images per class: the leaderboard's mean "
                                             "and 95% CI over arms (seeds × repeats; folds pooled within an arm)",
                                             folder), html.table(tables["auc"])),
        html.section("Convergence", html.paragraph("Epochs until validation AUC first reaches 90% / 95% of the "
                                                   f"run's final (best-checkpoint) value, mean and SD over {runs_word}."),
                     html.table(tables["convergence"])),
        html.section("Feature reuse: CKA by depth",
                     html.figure(figs["cka"], "Debiased CKA between each block's activations before and after "
                                 "fine-tuning, on a fixed validation batch" if figs["cka"] else why, folder),
                     html.paragraph("Floor: debiased CKA between two independent random inits of each model, on the "
                                    "same images (what 'unrelated' scores).") + html.table(a.probes.cka_floor)
                     if a.probes is not None and not a.probes.cka_floor.empty else "",
                     html.details(f"{len(a.probes.skipped)} trial(s) not fully probed",
                                  "".join(html.paragraph(line) for line in a.probes.skipped))
                     if a.probes is not None and a.probes.skipped else ""),
        html.section("Grad-CAM", html.figure(figs["gradcam"], "Grad-CAM of the true class at the last convolutional "
                                             "block, same test images for every init / model (best trial at the "
                                             "largest n)" if figs["gradcam"] else why, folder)),
        html.section("t-SNE of penultimate features",
                     html.figure(figs["tsne"], "Test images, coloured by true class" if figs["tsne"] else why, folder)),
        html.section("Ensembles", html.paragraph("Best-validation trial of each init × model per n, averaged and "
                                                 "weighted by validation AUC above chance; same test split."),
                     html.table(tables["ensembles"]) if not a.ensembles.empty
                     else html.note("fewer than two strategy / model bests at every n")),
        html.section("Model size and speed",
                     html.paragraph("Parameters, and the median wall time of 5 forward passes over one batch of "
                                    "test images, per image, on the machine that built this report."),
                     html.table(tables["model_cost"]) if a.probes else html.note(why)),
        html.section("Per-class metrics",
                     html.paragraph("One-vs-rest test AUC of each class per init × model × n (mean and 95% t "
                                    f"interval over {runs_word}); 'never predicted' counts trials whose most "
                                    "probable class on the test set was never that class."),
                     html.warning(f"{int((tables['per_class_auc']['never predicted in'] != '').sum())} class × arm "
                                  "cell(s) where a trial never predicted the class: see the table below.")
                     if (tables["per_class_auc"]["never predicted in"] != "").any() else "",
                     html.table(tables["per_class_auc"]),
                     html.details("Per trial: precision, recall, F1 and AUC of every class", html.table(tables["per_class"])),
                     confusion_tables(t, a.confusion, s.classes)),
        html.section("Shortcut probe", shortcut_part(a.shortcut, a.notes.get(
            "shortcut", "not run; set analysis.shortcut_probe: true in the study to run it"))),
        html.section("Unfinished trials", html.table(s.failed) if len(s.failed) else html.note("none")),
    ]
    path = folder / "report.html"
    path.write_text(html.page(f"xfer study report: {s.experiment}", *body))
    return path

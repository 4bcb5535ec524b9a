"""The report's figures (matplotlib, Agg backend): curves, AUC vs n, CKA by depth, Grad-CAM grid, t-SNE."""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

from xfer.analysis.collect import n_order  # noqa: E402

DPI = 110
BAR_STRIP_IN = 1.0  # inches right of the Grad-CAM grid for its colour bar, ticks and label


def _grid(count: int, width: float = 4.2, height: float = 3.3, columns: int = 3):
    cols = max(1, min(columns, count))
    rows = max(1, -(-count // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _band(ax, x, values: pd.DataFrame, label: str, bounds: tuple[float, float] = (0.0, 1.0)) -> None:
    """Mean line with a ±1 SD band over seeds (columns of `values` are x positions), clipped to the metric's range."""
    mean, sd = values.mean(0).to_numpy(), values.std(0).fillna(0).to_numpy()
    line, = ax.plot(x, mean, marker="o", markersize=3, label=label)
    ax.fill_between(x, np.clip(mean - sd, *bounds), np.clip(mean + sd, *bounds), color=line.get_color(), alpha=0.2)


def curve_label(init: str, model: str, several_models: bool) -> str:
    return f"{init} / {model}" if several_models else init


def learning_curves(histories: pd.DataFrame, trials: pd.DataFrame, path: Path, metric: str = "val_auc") -> Path:
    """Validation AUC vs epoch, mean ± SD over seeds, one panel per n_per_class, one line per init (× model)."""
    h = histories[histories["metric"] == metric].merge(trials[["run_id", "init", "model", "n_per_class"]], on="run_id")
    several = trials["model"].nunique() > 1
    ns = sorted(trials["n_per_class"].unique(), key=n_order)
    fig, axes = _grid(len(ns))
    for ax, n in zip(axes, ns):
        for (init, model), g in h[h["n_per_class"] == n].groupby(["init", "model"]):
            table = g.pivot_table(index="run_id", columns="epoch", values="value")
            _band(ax, table.columns.to_numpy(), table, curve_label(init, model, several))
        ax.set(title=f"n = {n} per class", xlabel="epoch", ylabel=metric.replace("_", " "))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def n_positions(trials: pd.DataFrame) -> dict[str, float]:
    """x position of each n per class on a log axis: its number; 'all' at the training pool's per-class size
    (n_train / classes of its trials), so 'all' sits where the data put it rather than at a category slot."""
    out = {}
    for n, g in trials.groupby("n_per_class"):
        if str(n) != "all":
            out[n] = float(n)
            continue
        pool = pd.to_numeric(g.get("param.n_train", pd.Series(dtype=float)), errors="coerce").mean()
        classes = max(sum(c.startswith("test_recall_") for c in trials.columns), 2)
        numeric = [float(v) for v in trials["n_per_class"].unique() if str(v) != "all"]
        out[n] = pool / classes if pool == pool else 2 * max(numeric, default=1.0)
    return out


def auc_vs_n(board: pd.DataFrame, trials: pd.DataFrame, path: Path) -> Path:
    """The leaderboard's test AUC vs n per class on a log axis (mean and 95% CI over arms: seeds × repeats, a
    cross-validated arm being its pooled folds), one line per init, one panel per model."""
    ns = sorted(board["n_per_class"].unique(), key=n_order)
    x = n_positions(trials)
    models = sorted(board["model"].unique())
    fig, axes = _grid(len(models))
    for ax, model in zip(axes, models):
        swept = [c for c in board.columns if c.startswith("train.")]  # a sweep study: one line per swept value
        for key, g in board[board["model"] == model].groupby(["init", *swept]):
            g = g.set_index("n_per_class").reindex(ns)
            xs = np.array([x[n] for n in ns])
            label = " ".join(f"{name[len('train.'):]}={value}" if name else str(value)
                             for name, value in zip(["", *swept], key))
            ax.plot(xs, g["test_auc"], marker="o", label=label)
            ax.fill_between(xs, g["ci_low"], g["ci_high"], alpha=0.15)
        ax.set_xscale("log")
        ax.set_xticks([x[n] for n in ns], [f"all (≈{x[n]:.0f})" if str(n) == "all" else str(n) for n in ns])
        ax.minorticks_off()
        ax.set(title=model, xlabel="images per class (n, log scale)", ylabel="test AUC")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def cka_by_depth(cka: pd.DataFrame, path: Path) -> Path:
    """CKA(initial, fine-tuned) per block by depth, mean ± SD over trials at each model's largest n."""
    models = sorted(cka["model"].unique())
    fig, axes = _grid(len(models), width=5.0)
    for ax, model in zip(axes, models):
        c = cka[cka["model"] == model]
        largest = max(c["n_per_class"].unique(), key=n_order)
        c = c[c["n_per_class"] == largest]
        for init, g in c.groupby("init"):
            table = g.pivot_table(index="run_id", columns="depth", values="cka")
            _band(ax, table.columns.to_numpy(), table, init)
        blocks = c.drop_duplicates("depth").sort_values("depth")
        ax.set_xticks(blocks["depth"], blocks["block"], rotation=60, ha="right", fontsize=7)
        ax.set(title=f"{model}, n = {largest}", xlabel="block (input → output)", ylabel="linear CKA", ylim=(0, 1.05))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def gradcam_grid(images: np.ndarray, labels: np.ndarray, cams: dict[str, np.ndarray], probs: dict[str, np.ndarray],
                 classes: tuple[str, ...], path: Path) -> Path:
    """Rows: the input images, then one row per init / model; columns: the same images; map of the true class.
    Only images most models classify correctly are shown (a misclassified image's map of its true class is mostly
    blank); the figure's title says which were kept."""
    keep, note = correctly_classified(labels, probs)
    images, labels = images[keep], labels[keep]
    cams = {k: v[keep] for k, v in cams.items()}
    probs = {k: v[keep] for k, v in probs.items()}
    rows = 1 + len(cams)
    cols = len(images)
    # the colour bar and its label take a fixed strip of BAR_STRIP_IN inches on the right, and the title wraps to the
    # width, so one probe column clips neither
    width = max(2.0 * cols, 2.4) + BAR_STRIP_IN
    title = textwrap.fill(note, width=max(int((width - BAR_STRIP_IN) * 14), 20))
    lines = title.count("\n") + 1 if title else 0
    height = 2.1 * rows + 0.18 * lines
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    extent = (0, images.shape[-1], images.shape[-2], 0)
    for j, (img, label) in enumerate(zip(images, labels)):
        axes[0, j].imshow(img.mean(0), cmap="gray", extent=extent)
        axes[0, j].set_title(f"label: {classes[label]}", fontsize=8)
        for i, (key, maps) in enumerate(sorted(cams.items()), start=1):
            axes[i, j].imshow(img.mean(0), cmap="gray", extent=extent)
            heat = axes[i, j].imshow(maps[j], cmap="jet", alpha=0.45, extent=extent, vmin=0, vmax=1)
            axes[i, j].set_title(f"p({classes[label]}) = {probs[key][j, label]:.2f}", fontsize=7)
            if j == 0:
                axes[i, 0].set_ylabel(key, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - BAR_STRIP_IN / width, 1))
    if cams:
        left = 1 - (BAR_STRIP_IN - 0.1) / width
        bar = fig.colorbar(heat, cax=fig.add_axes((left, 0.1, 0.15 / width, 0.6)))
        bar.set_label("Grad-CAM (0: none, 1: strongest)", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return path


def correctly_classified(labels: np.ndarray, probs: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """Indices of the images that at least half the models classify correctly, and a sentence saying so; all
    images (and a sentence saying that) when none is."""
    if not probs:
        return np.arange(len(labels)), ""
    right = np.mean([p.argmax(1) == labels for p in probs.values()], axis=0)
    keep = np.flatnonzero(right >= 0.5)
    if len(keep) == 0:
        return np.arange(len(labels)), "no image is classified correctly by most models: all shown"
    return keep, (f"{len(keep)} of {len(labels)} probe images, those classified correctly by at least half of "
                  f"the models")


def confusion_matrix_figure(matrix: np.ndarray, classes: tuple[str, ...], path: Path, title: str = "") -> Path:
    """A confusion matrix as a heat map of each true class's fractions, with counts (rows: true, columns: predicted)."""
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.2, 1.1 * len(classes) + 1.4))
    _fraction_bar(fig, _confusion_panel(ax, np.asarray(matrix), classes, title), ax)
    return _save(fig, path)


def confusion_grid(matrices: dict[str, np.ndarray], classes: tuple[str, ...], path: Path) -> Path:
    """One confusion-matrix panel per label (init / model), side by side, on one colour scale: the fraction of
    each true class (row) predicted as each class, 0–1, whatever a panel's counts; counts printed."""
    size = 0.8 * len(classes) + 1.6
    cols = max(1, min(4, len(matrices)))
    rows = max(1, -(-len(matrices) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.8, size * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[len(matrices):]:
        ax.set_visible(False)
    for ax, (label, matrix) in zip(axes.flat, matrices.items()):
        shown = _confusion_panel(ax, np.asarray(matrix), classes, label)
    _fraction_bar(fig, shown, list(axes.flat[:len(matrices)]))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _confusion_panel(ax, matrix: np.ndarray, classes: tuple[str, ...], title: str):
    """Colour: the row's fraction (0–1, the same scale on every panel); text: the count and that fraction."""
    fractions = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    shown = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count}\n{fractions[i, j]:.0%}", ha="center", va="center", fontsize=8,
                color="white" if fractions[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=8)
    return shown


def _fraction_bar(fig, shown, ax) -> None:
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("fraction of the true class", fontsize=7)
    bar.ax.tick_params(labelsize=7)


def tsne_panels(embeddings: dict[str, np.ndarray], labels: np.ndarray, classes: tuple[str, ...], path: Path) -> Path:
    """t-SNE of penultimate features, one panel per init / model, coloured by true class."""
    fig, axes = _grid(len(embeddings), width=3.6, height=3.4)
    for ax, (key, xy) in zip(axes, sorted(embeddings.items())):
        for k, name in enumerate(classes):
            pts = xy[labels == k]
            ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.7, label=name)
        ax.set(title=key, xticks=[], yticks=[])
        ax.legend(fontsize=7, markerscale=1.5)
    return _save(fig, path)

"""The study and stage schema: frozen dataclasses (parsed and checked by `xfer.load`); imports no registry."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from xfer.source import Source, parse_source

DERIVED = "xfer.derived"  # dataclass field metadata: computed from other fields, never logged nor hashed


MAX_PROBLEM = 2000  # characters of one problem line: a huge value is quoted by a prefix, never in full


class ConfigError(ValueError):
    """Every problem found in one config file, each with its field path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = [p if len(p) <= MAX_PROBLEM else f"{p[:MAX_PROBLEM]}... (cut)" for p in problems]
        problems = self.problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset on disk; `layout` picks the reader from `xfer.data.DATASETS`."""

    name: str
    layout: str  # metadata_csv | class_folders | label_csv | npz | torchxrayvision
    root: str
    images_dir: str = "images"
    metadata: str = "metadata.csv"  # CSV file (metadata_csv, label_csv) or .npz file (npz)
    filename_column: str = "filename"
    label_column: str = "finding"
    label: Optional[str] = None  # every image has this raw label (a set without a label column); label_column unused
    patient_column: Optional[str] = "patientid"
    view_column: Optional[str] = None
    views: tuple[str, ...] = ()  # keep only these views (empty: all)
    modality_column: Optional[str] = None
    modalities: tuple[str, ...] = ()  # keep only these modalities, e.g. X-ray (empty: all)
    label_map: dict[str, Optional[str]] = field(default_factory=dict)  # raw label → class (null: leave out); empty: identity; "*": any other
    folders: tuple[str, ...] = ()  # class_folders: sub-folders to read, e.g. [train]; empty: root
    max_per_class: Optional[int] = None  # cap images per class (first N in file order)
    xrv_class: Optional[str] = None  # torchxrayvision layout: its dataset class, e.g. NIH_Dataset


@dataclass(frozen=True)
class SplitConfig:
    """Patient-level, stratified split into train/val/test."""

    val_fraction: float = 0.2
    test_fraction: float = 0.25
    seed: int = 0
    predefined_test: Optional[str] = None  # class_folders: use this folder as the test split
    folds: Optional[int] = None  # K: patient-level stratified K-fold; fold and repeat become trial axes
    repeats: Optional[int] = None  # with folds: R repeats of the K-fold, each shuffled by seed + repeat; None: 1

    @property
    def fold_repeats(self) -> int:
        """How many times the K-fold is repeated (1 when unset)."""
        return self.repeats or 1


@dataclass(frozen=True)
class DataConfig:
    datasets: tuple[DatasetConfig, ...]
    classes: tuple[str, ...]
    positive_class: Optional[str] = None  # for sensitivity/specificity; default: last class
    image_size: int = 64
    channels: int = 1
    split: SplitConfig = SplitConfig()
    cache_dir: str = ".xfer_cache"
    multi_label: bool = False  # one sigmoid output per class (torchxrayvision datasets; pretraining stages)
    exclude_overlap_with: tuple[DatasetConfig, ...] = ()  # evaluated sets: drop images also in these (by content)
    external: tuple[DatasetConfig, ...] = ()  # external validation: each trial's best checkpoint is scored on each

    @property
    def positive_index(self) -> int:
        return positive_index(self.classes, self.positive_class)


@dataclass(frozen=True)
class InitConfig:
    """An initialization strategy and the weights it draws on; `origin` is `source` parsed, once, here."""

    strategy: str
    source: Optional[str] = None  # published name, checkpoint file, or stage:NAME
    label: Optional[str] = None  # how reports name it; default: strategy
    train: dict[str, Any] = field(default_factory=dict)  # this arm's own `train.*` values, e.g. {lr: 0.0003}
    origin: Source = field(init=False, repr=False, compare=False, metadata={DERIVED: True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin", parse_source(self.source if isinstance(self.source, str) else None))

    @property
    def name(self) -> str:
        return self.label or self.strategy

    @property
    def train_values(self) -> tuple[tuple[str, Any], ...]:
        """This arm's `train` overrides as (`train.NAME`, value) pairs, the form trials.sweep values take."""
        return tuple((f"train.{k}", v) for k, v in sorted(self.train.items()))

    def __hash__(self) -> int:
        return hash((self.strategy, self.source, self.label, self.train_values))


@dataclass(frozen=True)
class AugmentConfig:
    hflip: bool = False
    rotate_degrees: float = 0.0
    scale: float = 0.0  # zoom in/out by up to this fraction
    shift: float = 0.0  # width/height shift as a fraction of the size
    brightness: float = 0.0
    contrast: float = 0.0
    erase_p: float = 0.0  # cutout / random erasing probability


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 16
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: Literal["none", "onecycle", "cosine", "plateau"] = "none"
    freeze_epochs: int = 0  # train only the head for this many epochs, then unfreeze
    backbone_lr_mult: float = 1.0  # discriminative LR: backbone LR = lr × this
    label_smoothing: float = 0.0
    class_weights: bool = True
    sampler: Literal["none", "weighted"] = "none"
    mixup_alpha: float = 0.0
    early_stopping_patience: int = 0  # 0: never stop early
    progressive_sizes: tuple[tuple[int, int], ...] = ()  # (epoch, size): size from that epoch on
    augment: AugmentConfig = AugmentConfig()
    num_workers: int = 0


@dataclass(frozen=True)
class SeedWaves:
    """`trials.seeds: {min: 4, max: 48, until_mde: 0.08}`: seeds 0…min−1 at every n first, then seeds added per n
    in waves until every comparison at that n has a minimum detectable effect ≤ `until_mde` (standard errors
    only, never estimates or p-values), `max` seeds, or `budget_minutes` of study wall time (`xfer.waves`)."""

    min: int
    max: int
    until_mde: float
    budget_minutes: Optional[float] = None


@dataclass(frozen=True)
class TrialsConfig:
    init: tuple[InitConfig, ...]
    models: tuple[str, ...]
    n_per_class: tuple[Union[int, str], ...] = ("all",)
    # the same seeds at every n, per n: {5: 32, 80: 6} (seeds 0…k-1) or {5: [0, 1, 2], 80: [0]}, or in waves
    seeds: Union[tuple[int, ...], SeedWaves, dict[str, Union[int, tuple[int, ...]]]] = (0,)
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # extra grid axes: {"train.lr": [0.01, 0.001]}

    def seeds_for(self, n: Union[int, str]) -> tuple[int, ...]:
        """The evaluation seeds at training-set size `n` (seed waves: the first wave's)."""
        if isinstance(self.seeds, SeedWaves):
            return tuple(range(self.seeds.min))
        if not isinstance(self.seeds, dict):
            return tuple(self.seeds)
        given = self.seeds.get(str(n), ())
        return tuple(range(given)) if isinstance(given, int) else tuple(given)

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every evaluation seed at any n, once (seed waves: every seed a wave may add)."""
        if isinstance(self.seeds, SeedWaves):
            return tuple(range(self.seeds.max))
        return tuple(dict.fromkeys(s for n in self.n_per_class or () for s in self.seeds_for(n)))


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = 1
    gpu: float = 0


@dataclass(frozen=True)
class RayConfig:
    address: Optional[str] = None  # None: RAY_ADDRESS or a local Ray
    max_concurrent: Optional[int] = None
    max_failures: int = 1
    storage_path: Optional[str] = None  # default: <output_dir>/ray


@dataclass(frozen=True)
class TrackingConfig:
    uri: Optional[str] = None  # None: MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlflow.db
    experiment: Optional[str] = None  # default: the study name
    # MLflow pyfunc models (each loads its run's checkpoint/best.pt, the one stored copy of the weights): one per
    # trial (all), one per init for its trial of best validation AUC, logged by the report (best), or none
    log_models: Literal["all", "best", "none"] = "best"


@dataclass(frozen=True)
class AnalysisConfig:
    """How the report tests its hypotheses: error rates, power, margins, and the images probes use."""

    bootstrap_seed: int = 0  # seeds the probe image pick and the shortcut probe
    cka_images: int = 32  # debiased CKA needs at least 4; below ~32 two random networks look alike
    explain_images: int = 4
    shortcut_probe: bool = False
    equivalence_margin: float = 0.05  # AUC difference read as "comparable" (H5) / "not worse" (H4 grayscale)
    alpha: float = 0.05  # family-wise error rate of the whole report (Holm)
    power: float = 0.8  # a comparison whose minimum detectable effect at this power exceeds its margin: underpowered
    min_seeds: int = 3  # fewer seed/repeat clusters than this: inconclusive
    convergence_fraction: float = 0.9  # common target: 0.5 + fraction × (best strategy's val AUC − 0.5)
    convergence_margin: float = 1.0  # epochs: the smallest convergence difference worth detecting
    cka_margin: float = 0.05  # CKA: the smallest feature-reuse difference worth detecting


@dataclass(frozen=True)
class TuningConfig:
    """A tuning phase before the evaluation: per (init, model, n) cell, Tune searches `space` on validation only,
    with its own seeds, and the cell's evaluation trials train with the best values found."""

    space: dict[str, Any]  # "train.NAME": [choices] or "loguniform(lo, hi)" / "uniform(lo, hi)" / "randint(lo, hi)"
    samples: int = 8  # configurations tried per cell (a grid search: every combination once)
    search: Literal["random", "optuna", "grid"] = "random"
    scheduler: Literal["asha", "none"] = "asha"  # ASHA stops weak configurations early
    grace_epochs: int = 2  # ASHA: epochs every configuration trains before it can be stopped
    seeds: tuple[int, ...] = (100,)  # disjoint from trials.seeds: tuning never reuses an evaluation seed
    metric: Literal["val_auc"] = "val_auc"  # validation only: the test set is never read while tuning


@dataclass(frozen=True)
class StudyConfig:
    name: str
    data: DataConfig
    trials: TrialsConfig
    train: TrainConfig = TrainConfig()
    tuning: Optional[TuningConfig] = None
    resources: ResourcesConfig = ResourcesConfig()
    ray: RayConfig = RayConfig()
    tracking: TrackingConfig = TrackingConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    output_dir: Optional[str] = None
    description: str = ""

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir or f"outputs/{self.name}")


@dataclass(frozen=True)
class StageConfig:
    """A pretraining stage recipe (`pretrain/NAME.yaml`): trains one checkpoint."""

    stage: str
    data: DataConfig
    model: str = "resnet18"
    init: InitConfig = InitConfig("random")  # source may be stage:OTHER
    train: TrainConfig = TrainConfig()
    description: str = ""
    resources: ResourcesConfig = ResourcesConfig()
    tracking: TrackingConfig = TrackingConfig()


# ---------------------------------------------------------------- helpers


def positive_index(classes: tuple[str, ...], positive_class: Optional[str]) -> int:
    """Index of the positive class (sensitivity, specificity, binary AUC): `positive_class`, else the last."""
    return classes.index(positive_class) if positive_class in classes else len(classes) - 1


def set_values(obj: Any) -> dict[str, Any]:
    """flatten() without unset values (None, False, empty): what cache keys and fingerprints hash, so a
    new optional field at its default leaves existing keys, caches and finished runs valid."""
    return {k: v for k, v in flatten(obj).items() if not (v is None or v is False or v in ((), {}))}


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dataclass → flat {dotted.path: value} for logging every resolved value."""
    out: dict[str, Any] = {}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if not f.metadata.get(DERIVED):
                out.update(flatten(getattr(obj, f.name), f"{prefix}{f.name}."))
        return out
    if isinstance(obj, tuple) and obj and dataclasses.is_dataclass(obj[0]):
        for i, item in enumerate(obj):
            out.update(flatten(item, f"{prefix}{i}."))
        return out
    out[prefix.rstrip(".")] = obj
    return out

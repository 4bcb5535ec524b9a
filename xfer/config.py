"""Study and stage YAML → frozen, validated dataclasses (the only place raw dicts exist)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from xfer.convert import to_dataclass


class ConfigError(ValueError):
    """Every problem found in one config file, each with its field path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
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
    label_map: dict[str, str] = field(default_factory=dict)  # raw label → class; empty: identity; "*": any other
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


@dataclass(frozen=True)
class InitConfig:
    """An initialization strategy and the weights it draws on."""

    strategy: str
    source: Optional[str] = None  # published name, checkpoint file, or stage:NAME
    label: Optional[str] = None  # how reports name it; default: strategy

    @property
    def name(self) -> str:
        return self.label or self.strategy


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
class TrialsConfig:
    init: tuple[InitConfig, ...]
    models: tuple[str, ...]
    n_per_class: tuple[Union[int, str], ...] = ("all",)
    seeds: tuple[int, ...] = (0,)


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


@dataclass(frozen=True)
class AnalysisConfig:
    bootstrap_samples: int = 2000
    bootstrap_seed: int = 0
    cka_images: int = 32
    explain_images: int = 4
    shortcut_probe: bool = False
    equivalence_margin: float = 0.05  # AUC difference read as "comparable" (H5) / "not worse" (H4 grayscale)


@dataclass(frozen=True)
class StudyConfig:
    name: str
    data: DataConfig
    trials: TrialsConfig
    train: TrainConfig = TrainConfig()
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


# ---------------------------------------------------------------- validation


def _check_names(path: str, models: tuple[str, ...], inits: tuple[InitConfig, ...],
                 data: DataConfig, base_dir: Path, problems: list[str]) -> None:
    """Check registry names, classes and paths; append problems with field paths."""
    from xfer.data import DATASETS
    from xfer.data.xrv_datasets import IMAGE_COLUMNS
    from xfer.inits import INITS
    from xfer.models import is_known_model, known_models

    for i, ds in enumerate(data.datasets):
        at = f"data.datasets[{i}]"
        if ds.layout not in DATASETS:
            problems.append(f"{at}.layout: unknown dataset layout {ds.layout!r}; known: {DATASETS.known()}")
        if ds.layout == "torchxrayvision" and ds.xrv_class not in IMAGE_COLUMNS:
            problems.append(f"{at}.xrv_class: {ds.xrv_class!r} is not a supported torchxrayvision dataset; "
                            f"supported: {', '.join(IMAGE_COLUMNS)}")
        root = resolve_path(ds.root, base_dir)
        if not root.exists():
            problems.append(f"{at}.root: folder not found: {root}")
        unknown = sorted(set(ds.label_map.values()) - set(data.classes))
        if unknown:
            problems.append(f"{at}.label_map: maps to {unknown}, which are not in data.classes {list(data.classes)}")
    if len(data.classes) < 2:
        problems.append("data.classes: need at least two classes")
    if data.multi_label and any(ds.layout != "torchxrayvision" for ds in data.datasets):
        problems.append("data.multi_label: needs datasets of layout torchxrayvision (they carry per-pathology labels)")
    if data.positive_class is not None and data.positive_class not in data.classes:
        problems.append(f"data.positive_class: {data.positive_class!r} is not in data.classes {list(data.classes)}")
    if data.channels not in (1, 3):
        problems.append(f"data.channels: must be 1 or 3, got {data.channels}")
    s = data.split
    if not (0 <= s.val_fraction < 1 and 0 <= s.test_fraction < 1 and s.val_fraction + s.test_fraction < 1):
        problems.append("data.split: val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    for i, m in enumerate(models):
        if not is_known_model(m):
            problems.append(f"{path}models[{i}]: unknown model {m!r}; known: {known_models()}, or timm:NAME")
    for i, init in enumerate(inits):
        at = f"{path}init[{i}]"
        if init.strategy not in INITS:
            problems.append(f"{at}: unknown strategy {init.strategy!r}; known: {INITS.known()}")
        src = init.source
        if src and not src.startswith("stage:") and ":" not in src and not resolve_path(src, base_dir).exists():
            problems.append(f"{at}.source: checkpoint file not found: {resolve_path(src, base_dir)}")


def resolve_path(p: str, base_dir: Path) -> Path:
    """Paths in a config are relative to the working directory if they exist there, else to the file."""
    path = Path(p).expanduser()
    if path.is_absolute() or path.exists():
        return path
    beside = base_dir / path
    return beside if beside.exists() else path


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(str(path), ["file not found"])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(str(path), [f"not valid YAML: {e}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["expected a mapping at the top level"])
    return raw


def parse_study(raw: dict, source: str = "<study>", base_dir: Path = Path(".")) -> StudyConfig:
    """Validate a raw study mapping; raises ConfigError listing every problem."""
    problems: list[str] = []
    study = to_dataclass(raw, StudyConfig, "", problems)
    if study is not None and not problems:
        t = study.trials
        for i, n in enumerate(t.n_per_class):
            if not (n == "all" or (isinstance(n, int) and n > 0)):
                problems.append(f"trials.n_per_class[{i}]: expected a positive integer or 'all', got {n!r}")
        if not t.init:
            problems.append("trials.init: name at least one strategy")
        if not t.models:
            problems.append("trials.models: name at least one model")
        _check_names("trials.", t.models, t.init, study.data, base_dir, problems)
        if study.data.multi_label:
            problems.append("data.multi_label: studies are single-label; multi-label heads are for pretraining stages")
    if problems:
        raise ConfigError(source, problems)
    return study


def parse_stage(raw: dict, source: str = "<stage>", base_dir: Path = Path(".")) -> StageConfig:
    problems: list[str] = []
    stage = to_dataclass(raw, StageConfig, "", problems)
    if stage is not None and not problems:
        _check_names("", (stage.model,), (stage.init,), stage.data, base_dir, problems)
        if stage.data.multi_label and stage.train.sampler == "weighted":
            problems.append("train.sampler: 'weighted' needs single-label data; with data.multi_label use "
                            "class_weights (per-class positive weights) instead")
        problems[:] = [p.replace("models[0]", "model").replace("init[0]", "init") for p in problems]
    if problems:
        raise ConfigError(source, problems)
    return stage


def load_study(path: str | Path) -> StudyConfig:
    path = Path(path)
    return parse_study(_read_yaml(path), str(path), path.parent)


def load_stage(path: str | Path) -> StageConfig:
    path = Path(path)
    return parse_stage(_read_yaml(path), str(path), path.parent)


def is_stage_file(path: str | Path) -> bool:
    return "stage" in _read_yaml(Path(path))


def set_values(obj: Any) -> dict[str, Any]:
    """flatten() without unset values (None, False, empty): what cache keys and fingerprints hash, so a
    new optional field at its default leaves existing keys, caches and finished runs valid."""
    return {k: v for k, v in flatten(obj).items() if not (v is None or v is False or v in ((), {}))}


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dataclass → flat {dotted.path: value} for logging every resolved value."""
    out: dict[str, Any] = {}
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            out.update(flatten(getattr(obj, f.name), f"{prefix}{f.name}."))
        return out
    if isinstance(obj, tuple) and obj and dataclasses.is_dataclass(obj[0]):
        for i, item in enumerate(obj):
            out.update(flatten(item, f"{prefix}{i}."))
        return out
    out[prefix.rstrip(".")] = obj
    return out


def absolutize(data: DataConfig, base_dir: Path) -> DataConfig:
    """Make dataset roots and the cache folder absolute, so Ray workers in other folders find them."""
    def absolute(datasets: tuple[DatasetConfig, ...]) -> tuple[DatasetConfig, ...]:
        return tuple(dataclasses.replace(d, root=str(resolve_path(d.root, base_dir).resolve())) for d in datasets)

    return dataclasses.replace(data, datasets=absolute(data.datasets), cache_dir=str(Path(data.cache_dir).resolve()),
                               exclude_overlap_with=absolute(data.exclude_overlap_with))

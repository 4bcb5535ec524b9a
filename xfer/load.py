"""Study and stage YAML → validated `xfer.config` dataclasses: parsing, then registry names and paths checked."""
from __future__ import annotations

from pathlib import Path

import yaml

from xfer.config import ConfigError, DataConfig, InitConfig, StageConfig, StudyConfig, resolve_path
from xfer.convert import to_dataclass
from xfer.data import DATASETS
from xfer.data.root import missing_dataset_message
from xfer.data.xrv_datasets import IMAGE_COLUMNS
from xfer.inits import INITS
from xfer.models import is_known_model, known_models
from xfer.source import parse_source


def check_names(path: str, models: tuple[str, ...], inits: tuple[InitConfig, ...],
                 data: DataConfig, base_dir: Path, problems: list[str]) -> None:
    """Check registry names, classes and paths; append problems with field paths."""
    for i, ds in enumerate(data.datasets):
        at = f"data.datasets[{i}]"
        if ds.layout not in DATASETS:
            problems.append(f"{at}.layout: unknown dataset layout {ds.layout!r}; known: {DATASETS.known()}")
        if ds.layout == "torchxrayvision" and ds.xrv_class not in IMAGE_COLUMNS:
            problems.append(f"{at}.xrv_class: {ds.xrv_class!r} is not a supported torchxrayvision dataset; "
                            f"supported: {', '.join(IMAGE_COLUMNS)}")
        root = resolve_path(ds.root, base_dir)
        if not root.exists():
            problems.append(f"{at}.root: {missing_dataset_message(ds.root, root)}")
        unknown = sorted(set(ds.label_map.values()) - set(data.classes))
        if unknown:
            problems.append(f"{at}.label_map: maps to {unknown}, which are not in data.classes {list(data.classes)}")
        if ds.label is not None and ds.label_map.get(ds.label, ds.label) not in data.classes:
            problems.append(f"{at}.label: {ds.label!r} is not in data.classes {list(data.classes)} "
                            "(nor mapped to one by label_map)")
    for i, ds in enumerate(data.exclude_overlap_with):
        at = f"data.exclude_overlap_with[{i}]"
        if ds.layout not in DATASETS:
            problems.append(f"{at}.layout: unknown dataset layout {ds.layout!r}; known: {DATASETS.known()}")
        if not resolve_path(ds.root, base_dir).exists():
            problems.append(f"{at}.root: {missing_dataset_message(ds.root, resolve_path(ds.root, base_dir))}")
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
        source = parse_source(init.source)
        if source.kind == "file" and not resolve_path(source.name, base_dir).exists():
            problems.append(f"{at}.source: checkpoint file not found: {resolve_path(source.name, base_dir)}")


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
        check_names("trials.", t.models, t.init, study.data, base_dir, problems)
        if study.data.multi_label:
            problems.append("data.multi_label: studies are single-label; multi-label heads are for pretraining stages")
    if problems:
        raise ConfigError(source, problems)
    return study


def parse_stage(raw: dict, source: str = "<stage>", base_dir: Path = Path(".")) -> StageConfig:
    problems: list[str] = []
    stage = to_dataclass(raw, StageConfig, "", problems)
    if stage is not None and not problems:
        check_names("", (stage.model,), (stage.init,), stage.data, base_dir, problems)
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

"""Study and stage YAML → validated `xfer.config` dataclasses: parsing, then registry names and paths checked."""
from __future__ import annotations

from pathlib import Path

import yaml

from xfer.config import ConfigError, DataConfig, DatasetConfig, InitConfig, StageConfig, StudyConfig, resolve_path
from xfer.checks import data_problems, stage_source_problems, study_problems, train_problems
from xfer.convert import to_dataclass
from xfer.data import DATASETS
from xfer.data.prepare import split_and_external_problems
from xfer.data.root import missing_dataset_message
from xfer.data.xrv_datasets import IMAGE_COLUMNS
from xfer.inits import INITS
from xfer.models import is_known_model, known_models
from xfer.paths import name_problem
from xfer.source import parse_source
from xfer.sweep import init_train_problems, sweep_problems


def check_layout_and_root(at: str, ds: DatasetConfig, base_dir: Path, problems: list[str]) -> None:
    """A dataset's layout is registered and its folder exists (else the fetch hint)."""
    if ds.layout not in DATASETS:
        problems.append(f"{at}.layout: unknown dataset layout {ds.layout!r}; known: {DATASETS.known()}")
    root = resolve_path(ds.root, base_dir)
    if not root.exists():
        problems.append(f"{at}.root: {missing_dataset_message(ds.root, root)}")


def check_names(path: str, models: tuple[str, ...], inits: tuple[InitConfig, ...],
                 data: DataConfig, base_dir: Path, problems: list[str]) -> None:
    """Check registry names, classes and paths; append problems with field paths."""
    classes = tuple(data.classes or ())
    for i, ds in enumerate(data.datasets or ()):
        at = f"data.datasets[{i}]"
        if ds is None or ds.root is None:
            continue
        check_layout_and_root(at, ds, base_dir, problems)
        if ds.layout == "torchxrayvision" and ds.xrv_class not in IMAGE_COLUMNS:
            problems.append(f"{at}.xrv_class: {ds.xrv_class!r} is not a supported torchxrayvision dataset; "
                            f"supported: {', '.join(IMAGE_COLUMNS)}")
        unknown = sorted(set((ds.label_map or {}).values()) - set(classes))
        if unknown:
            problems.append(f"{at}.label_map: maps to {unknown}, which are not in data.classes {list(classes)}")
        if ds.label is not None and (ds.label_map or {}).get(ds.label, ds.label) not in classes:
            problems.append(f"{at}.label: {ds.label!r} is not in data.classes {list(classes)} "
                            "(nor mapped to one by label_map)")
    for i, ds in enumerate(data.exclude_overlap_with or ()):
        if ds is not None and ds.root is not None:
            check_layout_and_root(f"data.exclude_overlap_with[{i}]", ds, base_dir, problems)
    if len(classes) < 2:
        problems.append("data.classes: need at least two classes")
    if data.multi_label and any(ds is not None and ds.layout != "torchxrayvision" for ds in data.datasets or ()):
        problems.append("data.multi_label: needs datasets of layout torchxrayvision (they carry per-pathology labels)")
    if data.positive_class is not None and data.positive_class not in classes:
        problems.append(f"data.positive_class: {data.positive_class!r} is not in data.classes {list(classes)}")
    if data.channels not in (1, 3):
        problems.append(f"data.channels: must be 1 or 3, got {data.channels}")
    s = data.split
    if s is not None and _numbers(s.val_fraction, s.test_fraction) and not (
            0 <= s.val_fraction < 1 and 0 <= s.test_fraction < 1 and s.val_fraction + s.test_fraction < 1):
        problems.append("data.split: val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    for i, m in enumerate(models):
        if not is_known_model(m):
            problems.append(f"{path}models[{i}]: unknown model {m!r}; known: {known_models()}, or timm:NAME")
    for i, init in enumerate(inits):
        at = f"{path}init[{i}]"
        if init.strategy is not None and init.strategy not in INITS:
            problems.append(f"{at}: unknown strategy {init.strategy!r}; known: {INITS.known()}")
        source = parse_source(init.source if isinstance(init.source, str) else None)
        if source.kind == "file" and not resolve_path(source.name, base_dir).exists():
            problems.append(f"{at}.source: checkpoint file not found: {resolve_path(source.name, base_dir)}")


def _numbers(*values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


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
    """Validate a raw study mapping; raises ConfigError listing every problem (type errors do not hide the rest)."""
    problems: list[str] = []
    study = to_dataclass(raw, StudyConfig, "", problems)
    if study is not None:
        problems += study_problems(study, base_dir)
        t = study.trials
        if t is not None:
            for i, n in enumerate(t.n_per_class or ()):
                if not (n == "all" or (isinstance(n, int) and not isinstance(n, bool) and n > 0)):
                    problems.append(f"trials.n_per_class[{i}]: expected a positive integer or 'all', got {n!r}")
            if t.init is not None and not t.init:
                problems.append("trials.init: name at least one strategy")
            if t.models is not None and not t.models:
                problems.append("trials.models: name at least one model")
        if study.data is not None and t is not None:
            check_names("trials.", t.models or (), tuple(i for i in t.init or () if i is not None), study.data,
                        base_dir, problems)
        if study.data is not None and study.data.multi_label:
            problems.append("data.multi_label: studies are single-label; multi-label heads are for pretraining stages")
        if t is not None:
            problems += sweep_problems(t.sweep or {})
            problems += init_train_problems(tuple(i for i in t.init or () if i is not None), t.sweep or {})
        if study.data is not None and t is not None and not problems:
            problems += split_and_external_problems(study.data, tuple(t.n_per_class), base_dir)
    if problems:
        raise ConfigError(source, list(dict.fromkeys(problems)))
    return study


def parse_stage(raw: dict, source: str = "<stage>", base_dir: Path = Path(".")) -> StageConfig:
    """Validate a raw stage recipe mapping; raises ConfigError listing every problem."""
    problems: list[str] = []
    stage = to_dataclass(raw, StageConfig, "", problems)
    if stage is not None:
        problems += [p for p in [name_problem(stage.stage, "stage")] if p]
        problems += train_problems(stage.train) + data_problems(stage.data, base_dir)
        if stage.init is not None:
            problems += stage_source_problems(stage.init.source, "init.source")
            if stage.init.train:
                problems.append("init.train: a stage trains with its own train block; move these values there")
        if stage.data is not None:
            check_names("", (stage.model,), (stage.init,) if stage.init is not None else (), stage.data, base_dir,
                        problems)
            if stage.data.multi_label and stage.train is not None and stage.train.sampler == "weighted":
                problems.append("train.sampler: 'weighted' needs single-label data; with data.multi_label use "
                                "class_weights (per-class positive weights) instead")
        problems[:] = [p.replace("models[0]", "model").replace("init[0]", "init") for p in problems]
    if problems:
        raise ConfigError(source, list(dict.fromkeys(problems)))
    return stage


def load_study(path: str | Path) -> StudyConfig:
    path = Path(path)
    return parse_study(_read_yaml(path), str(path), path.parent)


def load_stage(path: str | Path) -> StageConfig:
    path = Path(path)
    return parse_stage(_read_yaml(path), str(path), path.parent)


def is_stage_file(path: str | Path) -> bool:
    return "stage" in _read_yaml(Path(path))

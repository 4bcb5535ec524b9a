"""Study and stage YAML → validated `xfer.config` dataclasses: parsing, then registry names and paths checked."""
from __future__ import annotations

from pathlib import Path

import yaml

from xfer.config import ConfigError, DataConfig, DatasetConfig, InitConfig, SeedWaves, StageConfig, StudyConfig
from xfer.data.root import resolve_path
from xfer.config_rules import data_problems, stage_source_problems, study_problems, train_problems
from xfer.convert import field_name, short, to_dataclass
from xfer.data import DATASETS
from xfer.data.prepare import split_and_external_problems
from xfer.data.root import missing_dataset_message
from xfer.data.xrv_datasets import IMAGE_COLUMNS
from xfer.inits import INITS, strategy_info
from xfer.models import is_known_model, known_models
from xfer.paths import name_problem
from xfer.sweep import init_train_problems, sweep_problems
from xfer.tuning import tuning_problems


def check_layout_and_root(at: str, ds: DatasetConfig, base_dir: Path, problems: list[str]) -> None:
    """A dataset's layout is registered and its folder exists (else the fetch hint)."""
    if ds.layout not in DATASETS:
        problems.append(f"{at}.layout: unknown dataset layout {short(ds.layout)}; known: {DATASETS.known()}")
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
            problems.append(f"{at}.xrv_class: {short(ds.xrv_class)} is not a supported torchxrayvision dataset; "
                            f"supported: {', '.join(IMAGE_COLUMNS)}")
        unknown = sorted(set((ds.label_map or {}).values()) - set(classes) - {None})  # null: leave the label out
        if unknown:
            problems.append(f"{at}.label_map: maps to {unknown}, which are not in data.classes {list(classes)}")
        if ds.label is not None and (ds.label_map or {}).get(ds.label, ds.label) not in classes:
            problems.append(f"{at}.label: {short(ds.label)} is not in data.classes {list(classes)} "
                            "(nor mapped to one by label_map)")
    for i, ds in enumerate(data.exclude_overlap_with or ()):
        if ds is not None and ds.root is not None:
            check_layout_and_root(f"data.exclude_overlap_with[{i}]", ds, base_dir, problems)
    if len(classes) < 2:
        problems.append("data.classes: need at least two classes")
    if data.multi_label and any(ds is not None and ds.layout != "torchxrayvision" for ds in data.datasets or ()):
        problems.append("data.multi_label: needs datasets of layout torchxrayvision (they carry per-pathology labels)")
    if data.positive_class is not None and data.positive_class not in classes:
        problems.append(f"data.positive_class: {short(data.positive_class)} is not in data.classes {list(classes)}")
    if data.channels not in (1, 3):
        problems.append(f"data.channels: must be 1 or 3, got {data.channels}")
    s = data.split
    if s is not None and _numbers(s.val_fraction, s.test_fraction) and not (
            0 <= s.val_fraction < 1 and 0 <= s.test_fraction < 1 and s.val_fraction + s.test_fraction < 1):
        problems.append("data.split: val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    for i, m in enumerate(models):
        if not is_known_model(m):
            problems.append(f"{path}models[{i}]: unknown model {short(m)}; known: {known_models()}, or timm:NAME")
    for i, init in enumerate(inits):
        at = f"{path}init[{i}]"
        if init.strategy is not None and init.strategy not in INITS:
            problems.append(f"{at}: unknown strategy {short(init.strategy)}; known: {INITS.known()}")
        source = init.origin
        if source.kind == "file" and not resolve_path(source.name, base_dir).exists():
            problems.append(f"{at}.source: checkpoint file not found: {resolve_path(source.name, base_dir)}")


def _numbers(*values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


MAX_YAML_BYTES = 1 << 20  # a study or recipe is a few KB; more is a mistake (or an attack), refused unread
MAX_YAML_NODES = 100_000  # values after aliases are expanded: bounds a "billion laughs" bomb of a few hundred bytes


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses a document expanding (through aliases) past MAX_YAML_NODES values, and
    duplicate keys (which SafeLoader silently resolves to the last), before anything is built from it."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            problems = _node_problems(node)
            if problems:
                raise ConfigError(self.name, problems)
        return node


def _node_problems(root: yaml.Node) -> list[str]:
    """Duplicate keys (with their field path and lines), and a too large expanded size; linear in the nodes
    written (an alias is counted at its full size, but walked once)."""
    sizes: dict[int, int] = {}
    problems: list[str] = []

    def walk(node: yaml.Node, path: str) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(walk(child, f"{path}[{i}]") for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name != "<<":
                    at = f"{path}.{field_name(name)}" if path else field_name(name)
                    if name in first:
                        problems.append(f"{at}: duplicate key (lines {first[name] + 1} and "
                                        f"{key.start_mark.line + 1}); YAML would keep only the last: remove one")
                    first.setdefault(name, key.start_mark.line)
                size += walk(key, path) + walk(value, f"{path}.{field_name(name)}" if path else field_name(name))
        sizes[id(node)] = size
        return size

    total = walk(root, "")
    if total > MAX_YAML_NODES:
        problems.append(f"the document expands to {total:,} values through its aliases (&anchor / *alias), more "
                        f"than the {MAX_YAML_NODES:,} a study or recipe may hold; write the values out or use fewer "
                        f"nested aliases")
    return problems


def read_yaml_text(text: str, source: str) -> object:
    """Parse YAML text with the limits above; any problem is a ConfigError naming `source`."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(source, [f"{len(text):,} characters, more than the {MAX_YAML_BYTES:,} a study or recipe "
                                   f"may have; is this the right file?"])
    loader = BoundedLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: an integer of over 4300 digits
        raise ConfigError(source, [f"not valid YAML: {str(e)[:500]}"]) from None
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict:
    """A study or recipe file as a mapping, within the size and alias limits; else a ConfigError naming it."""
    if not path.exists():
        raise ConfigError(str(path), ["file not found"])
    if path.is_file() and path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(str(path), [f"{path.stat().st_size:,} bytes, more than the {MAX_YAML_BYTES:,} a study or "
                                      f"recipe may have; is this the right file?"])
    raw = read_yaml_text(path.read_text(), str(path))
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
                    problems.append(f"trials.n_per_class[{i}]: expected a positive integer or 'all', got {short(n)}")
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
            seeds_wrong = seed_problems(t)
            problems += seeds_wrong
            problems += tuning_problems(study.tuning, t.all_seeds if t.seeds is not None and not seeds_wrong else ())
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


WAVE_KEYS = ("min", "max", "until_mde", "budget_minutes")


def seed_problems(trials) -> list[str]:
    """Seeds per n (`trials.seeds: {5: 32, 80: 6}`): one entry per n of trials.n_per_class, each a count >= 1 or a
    non-empty list of seeds in [0, 2**32); seed waves (`{min: 4, max: 48, until_mde: 0.08}`): 3 <= min <= max,
    0 < until_mde < 1, a positive budget, and a random baseline to compare against."""
    if isinstance(trials.seeds, SeedWaves):
        return wave_problems(trials)
    if not isinstance(trials.seeds, dict):
        return []
    if set(trials.seeds) & set(WAVE_KEYS):
        return [f"trials.seeds: seed waves take {', '.join(WAVE_KEYS)} (min, max and until_mde required); got "
                f"{', '.join(map(str, trials.seeds))}"]
    sizes = {str(n) for n in trials.n_per_class or ()}
    problems = [f"trials.seeds.{k}: not a size of trials.n_per_class ({', '.join(sorted(sizes))})"
                for k in trials.seeds if k not in sizes]
    problems += [f"trials.seeds: no seeds for n = {n}; give every size of trials.n_per_class its seeds"
                 for n in sorted(sizes - set(trials.seeds))]
    for k, given in trials.seeds.items():
        seeds = range(given) if isinstance(given, int) else given
        if isinstance(given, int) and given < 1 or not seeds:
            problems.append(f"trials.seeds.{k}: give a count >= 1 or a non-empty list of seeds")
        elif not all(0 <= s < 2 ** 32 for s in seeds) or len(set(seeds)) != len(seeds):
            problems.append(f"trials.seeds.{k}: seeds must be distinct integers in [0, 2**32)")
    return problems


def wave_problems(trials) -> list[str]:
    """The rules of `trials.seeds` in waves (see `seed_problems`)."""
    waves, problems = trials.seeds, []
    if not 3 <= waves.min <= waves.max <= 10_000:
        problems.append(f"trials.seeds: seed waves need 3 <= min <= max <= 10000 (fewer than 3 seeds decide "
                        f"nothing); got min {waves.min}, max {waves.max}")
    if not 0 < waves.until_mde < 1:
        problems.append(f"trials.seeds.until_mde: the target minimum detectable effect is an AUC difference in "
                        f"(0, 1); got {waves.until_mde}")
    if waves.budget_minutes is not None and not waves.budget_minutes > 0:
        problems.append(f"trials.seeds.budget_minutes: must be positive; got {waves.budget_minutes}")
    if not any(i is not None and i.strategy in INITS and strategy_info(i.strategy).untrained for i in trials.init or ()):
        problems.append("trials.seeds: seed waves stop when every comparison with the untrained baseline is "
                        "precise enough; add {strategy: random} to trials.init")
    return problems


def load_study(path: str | Path) -> StudyConfig:
    path = Path(path)
    return parse_study(read_yaml(path), str(path), path.parent)


def load_stage(path: str | Path) -> StageConfig:
    path = Path(path)
    return parse_stage(read_yaml(path), str(path), path.parent)


def is_stage_file(path: str | Path) -> bool:
    return "stage" in read_yaml(Path(path))

"""A study mapping as YAML for people: flow-style leaves, and under each section every option it leaves at its
default, as a comment (the defaults read from `xfer.config`, so the comments never go stale)."""
from __future__ import annotations

import dataclasses
from typing import Optional

import yaml

from xfer.config import AnalysisConfig, DataConfig, SplitConfig, TrackingConfig, TrainConfig, TrialsConfig

SECTIONS = {"data": DataConfig, "trials": TrialsConfig, "train": TrainConfig, "analysis": AnalysisConfig,
            "tracking": TrackingConfig}
NESTED = {("data", "split"): SplitConfig}
UNLISTED = {"datasets", "external", "exclude_overlap_with"}  # lists of datasets: README: Data (`data:`)


def flow(value) -> str:
    """A value as one line of YAML."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def commented_options(cls: type, written: dict, indent: str) -> list[str]:
    """`# field: default` for each field of `cls` the study does not set."""
    rest = [f for f in dataclasses.fields(cls) if f.name not in written and f.name not in UNLISTED
            and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)]
    lines = [f"{indent}# {f.name}: {flow(list(v) if isinstance(v := default_of(f), tuple) else v)}" for f in rest]
    return [f"{indent}# other options (their defaults):"] + lines if lines else []


def section_lines(path: tuple[str, ...], mapping: dict, cls: Optional[type]) -> list[str]:
    indent = "  " * len(path)
    lines = []
    for key, value in mapping.items():
        nested = NESTED.get(path + (key,))
        if nested is not None and isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines += section_lines(path + (key,), value, nested)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{indent}{key}:")
            lines += [f"{indent}  - {flow(v)}" for v in value]
        elif isinstance(value, dict) and len(path) == 0:
            lines.append(f"{key}:" if value else f"# {key}:")
            lines += section_lines((key,), value, SECTIONS.get(key))
        else:
            lines.append(f"{indent}{key}: {flow(value)}")
    if cls is not None:
        lines += commented_options(cls, mapping, indent)
    return lines


def study_yaml(study: dict) -> str:
    """The study as YAML; each section lists the options it leaves at their defaults as comments."""
    study = dict(study)
    for key in SECTIONS:
        study.setdefault(key, {})
    return "\n".join(section_lines((), study, None)) + "\n"

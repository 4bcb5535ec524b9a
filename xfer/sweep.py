"""`trials.sweep` (any `train.*` value as an extra grid axis) and an arm's own `train` values: checked at load,
applied per trial."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from xfer.config import InitConfig, StudyConfig, TrainConfig
from xfer.convert import _convert


def sweep_problems(sweep: dict[str, tuple[Any, ...]]) -> list[str]:
    """What is wrong with a `trials.sweep` mapping: unknown `train.*` names, empty or mistyped values."""
    hints = typing.get_type_hints(TrainConfig)
    problems: list[str] = []
    for name, values in sweep.items():
        field = name[len("train."):] if name.startswith("train.") else ""
        if field not in hints:
            problems.append(f"trials.sweep.{name}: not a train setting; sweep one of "
                            f"{', '.join('train.' + h for h in hints)}")
        elif not values:
            problems.append(f"trials.sweep.{name}: give at least one value")
        else:
            for i, value in enumerate(values):
                _convert(value, hints[field], f"trials.sweep.{name}[{i}]", problems)
    return problems


def init_train_problems(inits: tuple[InitConfig, ...], sweep: dict[str, tuple[Any, ...]]) -> list[str]:
    """What is wrong with the arms' own `train` values: unknown names, mistyped values, a value also swept."""
    hints = typing.get_type_hints(TrainConfig)
    problems: list[str] = []
    for i, init in enumerate(inits):
        for name, value in (init.train or {}).items():
            at = f"trials.init[{i}].train.{name}"
            if name not in hints:
                problems.append(f"{at}: not a train setting; use one of {', '.join(hints)}")
            elif f"train.{name}" in sweep:
                problems.append(f"{at}: train.{name} is also in trials.sweep; set it in one place")
            else:
                _convert(value, hints[name], at, problems)
    return problems


def apply_sweep(study: StudyConfig, sweep: tuple[tuple[str, Any], ...]) -> StudyConfig:
    """The study with a trial's swept `train.*` values (and its arm's own, `InitConfig.train_values`) in its
    `train` block."""
    if not sweep:
        return study
    hints = typing.get_type_hints(TrainConfig)
    values = {name[len("train."):]: _convert(value, hints[name[len("train."):]], name, []) for name, value in sweep}
    return dataclasses.replace(study, train=dataclasses.replace(study.train, **values))

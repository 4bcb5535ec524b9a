"""The study as a plan: phases of units of work, each unit the trials one Tune trial runs in one process.

The plan is the one source of trial keys, names and counts: Tune runs a phase's units by key, the console counts
them, `xfer check` estimates them and `--resume` compares them. Today a unit holds one trial; the evaluation phase
is the study's grid and a tuning phase (`tuning:` in the study) comes before it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

from xfer.config import InitConfig, StudyConfig, set_values
from xfer.record import EVALUATION, TUNING, TrialTags


@dataclass(frozen=True)
class TrialSpec:
    """One trial: an (init, model, n, seed[, fold, repeat][, swept values]) cell of the study."""

    init: InitConfig  # as the study names it; `stage:` sources are resolved to checkpoint files before trials run
    model: str
    n_per_class: Union[int, str]
    seed: int
    sweep: tuple[tuple[str, Any], ...] = ()  # swept `train.*` values: (("train.lr", 0.01), ...); part of the key
    fold: Optional[int] = None  # cross-validated studies (data.split.folds): the test fold
    repeat: int = 0  # and the K-fold repeat it belongs to
    recipe: tuple[tuple[str, Any], ...] = ()  # `train.*` values a tuning phase chose for this cell; not in the key
    phase: str = EVALUATION

    @property
    def folds(self) -> dict[str, int]:
        """{"fold", "repeat"} of a cross-validated trial; empty for the fixed split."""
        return {} if self.fold is None else {"fold": self.fold, "repeat": self.repeat}

    @property
    def key(self) -> str:
        folds = "".join(f"|{name}={value}" for name, value in self.folds.items())
        swept = "".join(f"|{name}={value}" for name, value in self.sweep)
        tuning = "|tuning" if self.phase == TUNING else ""
        return f"{self.init.name}|{self.model}|n={self.n_per_class}|seed={self.seed}{folds}{swept}{tuning}"

    @property
    def cell(self) -> tuple[str, str, Union[int, str]]:
        """The (init, model, n) cell a tuning phase chooses one recipe for."""
        return self.init.name, self.model, self.n_per_class

    @property
    def train_values(self) -> tuple[tuple[str, Any], ...]:
        """Every `train.*` value this trial overrides: its arm's own, the tuned recipe, then its swept values."""
        return (*self.init.train_values, *self.recipe, *self.sweep)

    def tags(self, study: str, dataset: str) -> TrialTags:
        return TrialTags(study=study, key=self.key, init=self.init.name, strategy=self.init.strategy,
                         model=self.model, n_per_class=str(self.n_per_class), seed=self.seed, dataset=dataset,
                         fold=self.fold, repeat=self.repeat if self.fold is not None else None,
                         sweep=tuple((name, str(value)) for name, value in self.sweep), phase=self.phase)


@dataclass(frozen=True)
class Unit:
    """The trials one Tune trial runs, in one process, reporting every one of their MLflow runs."""

    specs: tuple[TrialSpec, ...]

    @property
    def key(self) -> str:
        return " + ".join(spec.key for spec in self.specs)

    @property
    def name(self) -> str:
        """A readable Tune trial name and folder: init-model-nN-sS[-f0r0][-lr0.01], no characters paths dislike."""
        spec = self.specs[0]
        swept = "".join(f"-{k[len('train.'):]}{v}" for k, v in spec.sweep)
        folds = f"-f{spec.fold}r{spec.repeat}" if spec.fold is not None else ""
        more = f"-and{len(self.specs) - 1}" if len(self.specs) > 1 else ""
        name = f"{spec.init.name}-{spec.model}-n{spec.n_per_class}-s{spec.seed}{folds}{swept}{more}"
        return name.replace("/", "_").replace(":", "_")


@dataclass(frozen=True)
class Phase:
    """Units Tune runs together: every unit once (a grid), or, for tuning, samples of a search space per cell."""

    name: str  # record.EVALUATION or record.TUNING
    units: tuple[Unit, ...]

    @property
    def trials(self) -> int:
        return sum(len(u.specs) for u in self.units)

    def unit(self, key: str) -> Unit:
        return self._by_key()[key]

    def _by_key(self) -> dict[str, Unit]:
        return {u.key: u for u in self.units}

    def fingerprint(self, study: StudyConfig) -> str:
        """What a resumed Tune state must match: the units and every set value of the study that changes a
        trial (output, Ray, tracking and analysis settings aside)."""
        values = {k: v for k, v in set_values(study).items()
                  if not k.startswith(("ray.", "tracking.", "analysis.", "output_dir", "description"))}
        text = json.dumps({"units": [u.key for u in self.units], "recipes": [spec.recipe for u in self.units
                                                                              for spec in u.specs],
                           "study": values}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluation_specs(study: StudyConfig) -> Iterator[TrialSpec]:
    """Every trial of the study's grid: init × model × n × seed (× fold × repeat) × swept values."""
    t, split = study.trials, study.data.split
    folds = [(f, r) for r in range(split.fold_repeats) for f in range(split.folds)] if split.folds else [(None, 0)]
    sweeps = [()]
    for name, values in t.sweep.items():
        sweeps = [(*s, (name, v)) for s in sweeps for v in values]
    for init in t.init:
        for model in t.models:
            for n in t.n_per_class:
                for seed in t.seeds_for(n):
                    for fold, repeat in folds:
                        for sweep in sweeps:
                            yield TrialSpec(init, model, n, seed, tuple(sorted(sweep)), fold, repeat)


def evaluation_phase(study: StudyConfig, recipes: Optional[dict[tuple, tuple]] = None) -> Phase:
    """The study's grid, one trial per unit; `recipes` ((init, model, n) → chosen train values) from a tuning phase."""
    recipes = recipes or {}
    specs = (dataclasses.replace(s, recipe=recipes.get(s.cell, ())) for s in evaluation_specs(study))
    return Phase(EVALUATION, tuple(Unit((s,)) for s in specs))


def trial_count(study: StudyConfig) -> int:
    """Trials of the evaluation phase (the ones the verdicts use)."""
    return evaluation_phase(study).trials


def trials_per_seed(study: StudyConfig) -> int:
    """Trials one more seed adds at one n: inits × models × folds × swept values."""
    n = study.trials.n_per_class[0]
    seed = study.trials.seeds_for(n)[0]
    return sum(1 for spec in evaluation_specs(study) if spec.n_per_class == n and spec.seed == seed)


def trials_at_once(study: StudyConfig) -> int:
    """Trials this machine runs at once: its cores over each trial's CPUs, capped by ray.max_concurrent."""
    import os

    slots = max(1, int((os.cpu_count() or 1) // max(study.resources.cpu, 1)))
    return min(slots, study.ray.max_concurrent or slots)


def with_resolved_init(spec: TrialSpec, inits: dict[tuple[str, str], InitConfig]) -> TrialSpec:
    """The spec with its init's `stage:` source resolved to the stage's checkpoint (for this model)."""
    return dataclasses.replace(spec, init=inits[spec.init.name, spec.model])

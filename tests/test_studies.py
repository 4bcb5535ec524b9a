"""Every shipped study loads, names stage recipes that exist, and expands to the trial count its header plans."""
from pathlib import Path

import pytest

from xfer.config import StudyConfig
from xfer.load import load_study
from xfer.source import parse_source
from xfer.stages import plan_stage, recipe_dirs
from xfer.plan import trial_count

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "experiments").glob("*.yaml"))

# the trial counts the study files were sized for (budget: bench/RESULTS.md); a change here is a change of design
PLANNED_TRIALS = {
    "init_study": 5 * (8 + 6 + 5),  # 5 inits × seeds {5: 8, 20: 6, 80: 5} (xfer plan, 45 min), EfficientNet-Lite0
    "init_study_tuned": 5 * 2 * 6,  # 5 inits × n {5, 20} × 6 seeds, after a tuning phase of 80 tuning trials
    "waves_smoke": 2 * 2 * 3,  # the first wave: 2 inits × n {5, 80} × 3 seeds (at most 6 seeds per n)
    "init_study_resnet18": 5 * 3 * 8,  # 5 inits × n {5, 20, 80} × 8 seeds, ResNet-18 with xfer's Imagenette stages
    "lr_pilot_lite0": 5 * 3 * 2,  # 5 inits × lr {1e-4, 3e-4, 1e-3} × 2 pilot seeds at n = 5
    "covid_actualmed": 5 * 3 * 3,  # 5 inits × 3 folds × 3 repeats, all training images
    "covid_ieee8023": 5 * 2 * 3,  # 5 inits × n {5, 40} × 3 seeds
    "small_cnn_study": 2 * 3 * 8,  # random init × {cbr_small, resnet18} × n {5, 20, 80} × 8 seeds
}


def test_studies_are_shipped():
    assert {"init_study", "init_study_resnet18", "covid_actualmed", "covid_ieee8023"} <= {p.stem for p in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_loads_and_counts_its_trials(path):
    study = load_study(path)
    assert isinstance(study, StudyConfig) and study.name == path.stem
    count = trial_count(study)
    assert count == PLANNED_TRIALS.get(study.name, count) and count > 0


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_stage_a_study_names_has_a_recipe(path):
    study = load_study(path)
    for init in study.trials.init:
        source = parse_source(init.source)
        if source.kind == "stage":
            for model in study.trials.models:
                assert plan_stage(source.name, model, recipe_dirs(path)).key


def test_adult_covid_targets_do_not_start_from_the_radiography_corpus():
    """covid-radiography-112 holds ieee8023 and Hannover images: the COVID studies use the Kermany intermediate."""
    for name in ("covid_actualmed", "covid_ieee8023"):
        sources = {i.source for i in load_study(ROOT / "experiments" / f"{name}.yaml").trials.init}
        assert "stage:xray_intermediate" not in sources and "stage:xray_intermediate_kermany" in sources, name


def test_the_default_study_uses_real_imagenet_weights_and_seeds_disjoint_from_its_pilot():
    study, pilot = (load_study(ROOT / "experiments" / f"{name}.yaml") for name in ("init_study", "lr_pilot_lite0"))
    assert {i.source for i in study.trials.init if i.strategy in ("imagenet", "meanvar")} == \
        {"timm:efficientnet_lite0.pypi_in1k"}
    assert not set(study.trials.seeds) & set(pilot.trials.seeds)  # the learning rates were chosen on other seeds

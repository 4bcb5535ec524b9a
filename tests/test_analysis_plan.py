"""The seed plan: variance components from finished runs predict the minimum detectable effect at k seeds, checked
against simulated studies with that many seeds and the effect planted (xfer.analysis.simulate)."""
import numpy as np
import pytest

from xfer.analysis.paired import image_scores
from xfer.analysis.plan import mde_at, plan_comparison, seeds_for
from xfer.analysis.simulate import Arm, Design, simulate_study
from xfer.analysis.stats import Components, decision_p, image_level_effect, variance_components


def design(seeds: int, delta: float = 0.0) -> Design:
    return Design({"random": {"80": Arm(0.8, seed_sd=0.03)}, "imagenet": {"80": Arm(0.8 + delta, seed_sd=0.03)}},
                  seeds=seeds, test_images=300)


def contrast(rng, d: Design):
    trials, predictions, _ = simulate_study(rng, d)
    scores = image_scores(trials, predictions)
    cells = scores.cells(trials, [(trials["init"] == "imagenet", 1.0), (trials["init"] == "random", -1.0)],
                         ("model", "n_per_class", "seed"))
    return cells, scores.images


def pilot_components(studies: int, seeds: int = 8) -> Components:
    """The components of the pilots, averaged (a pilot is a finished study's runs)."""
    rng = np.random.default_rng(1)
    parts = [variance_components(*contrast(rng, design(seeds))) for _ in range(studies)]
    mean = lambda field: float(np.mean([getattr(p, field) for p in parts]))  # noqa: E731
    return Components(0.0, mean("shared"), mean("per_seed"), mean("own_noise"), parts[0].image_df, seeds)


def simulated_power(delta: float, seeds: int, studies: int) -> float:
    rng = np.random.default_rng(2)
    hits = [decision_p(image_level_effect(*contrast(rng, design(seeds, delta))), "greater", 0)
            for _ in range(studies)]
    return float(np.mean([p < 0.05 and up for p, up in hits]))


def check_predicted_mde_is_the_80_percent_power_point(studies: int, low: float, high: float):
    components = pilot_components(8)
    predicted = mde_at(components, 4)
    power = simulated_power(predicted, 4, studies)
    print(f"predicted mde at 4 seeds {predicted:.4f}; simulated power there {power:.3f}")
    # within 20% of the mde ⇔ the power at the predicted mde lies between that at 0.8× (~0.6) and 1.2× (~0.92)
    assert low <= power <= high


def test_predicted_mde_at_four_seeds_has_about_80_percent_power():
    check_predicted_mde_is_the_80_percent_power_point(80, 0.55, 0.96)


@pytest.mark.slow
def test_predicted_mde_at_four_seeds_has_80_percent_power_within_20_percent():
    check_predicted_mde_is_the_80_percent_power_point(400, 0.6, 0.93)


def test_more_seeds_lower_the_mde_down_to_the_test_set_floor():
    c = Components(0.0, shared=1e-4, per_seed=4e-3, own_noise=5e-4, image_df=300, seeds=8)
    assert mde_at(c, 3) > mde_at(c, 8) > mde_at(c, 32)
    plan = plan_comparison("imagenet − random", c, target=0.06)
    assert plan.seeds_needed is not None and plan.mde_at_needed <= 0.06 < mde_at(c, plan.seeds_needed - 1)
    assert seeds_for(c, target=plan.floor * 0.99) is None  # the shared test-set part no seed count removes

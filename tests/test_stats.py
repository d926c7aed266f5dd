"""entrosel.evaluate.stats: cases whose answers are known."""
import math

import numpy as np
import pytest

from entrosel.evaluate import stats


def test_rank_p_of_a_value_below_every_draw_is_one_over_n_plus_one():
    draws = [6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0]
    assert stats.rank_p(6.0, draws, "less") == pytest.approx(1 / 11)
    assert stats.rank_p(6.0, draws, "greater") == pytest.approx(1.0)
    assert stats.rank_p(6.0, draws) == pytest.approx(2 / 11)
    assert stats.rank_p(7.5, draws, "greater") == pytest.approx(1 / 11)
    assert stats.rank_among(6.0, draws) == 1
    assert stats.rank_among(6.65, draws) == 7
    assert stats.rank_among(7.5, draws) == 11


def test_rank_p_of_a_value_in_the_middle_is_not_small():
    draws = list(range(10))
    assert stats.rank_p(4.5, draws, "less") == pytest.approx(6 / 11)
    assert stats.rank_p(4.5, draws) == pytest.approx(1.0)


def test_rank_p_is_calibrated_under_the_null():
    """A value drawn from the draws' own distribution: P(p <= 1/(n+1)) = 1/(n+1)."""
    rng = np.random.default_rng(0)
    hits = sum(stats.rank_p(rng.normal(), rng.normal(size=9), "less") <= 0.1 + 1e-12 for _ in range(4000))
    assert hits / 4000 == pytest.approx(0.1, abs=0.015)


def test_t_cdf_matches_tabled_quantiles():
    # two-sided 5% critical values of Student's t: df 9 -> 2.262, df 2 -> 4.303; df 1 is Cauchy
    assert stats.t_cdf(2.2621571628, 9) == pytest.approx(0.975, abs=1e-7)
    assert stats.t_cdf(-4.3026527297, 2) == pytest.approx(0.025, abs=1e-7)
    assert stats.t_cdf(1.0, 1) == pytest.approx(0.5 + math.atan(1.0) / math.pi, abs=1e-10)
    assert stats.t_cdf(0.0, 5) == pytest.approx(0.5)


def test_prediction_p_known_value():
    draws = [0.0, 1.0, 2.0, 3.0, 4.0]  # mean 2, s = sqrt(2.5), n = 5
    t = -2.7764451052  # df 4, two-sided 5%
    value = 2.0 + t * math.sqrt(2.5) * math.sqrt(1 + 1 / 5)
    assert stats.prediction_p(value, draws) == pytest.approx(0.05, abs=1e-6)
    assert stats.prediction_p(value, draws, "less") == pytest.approx(0.025, abs=1e-6)
    assert stats.prediction_p(2.0, draws) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        stats.prediction_p(1.0, [3.0, 3.0, 3.0])


def test_prediction_p_is_calibrated_under_the_null():
    rng = np.random.default_rng(1)
    ps = np.array([stats.prediction_p(rng.normal(5, 2), rng.normal(5, 2, size=10)) for _ in range(3000)])
    assert np.mean(ps < 0.05) == pytest.approx(0.05, abs=0.012)


def test_holm_known_adjustment():
    # sorted 0.01, 0.02, 0.03, 0.5 -> x4, x3, x2, x1 = 0.04, 0.06, 0.06 (monotone), 0.5
    assert stats.holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert stats.holm([0.04]) == pytest.approx([0.04])


def test_paired_bootstrap_constant_difference_has_no_width():
    a = np.array([3.0, 4.0, 5.0, 6.0])
    ci = stats.paired_bootstrap(a + 0.25, a, resamples=500)
    assert ci["diff"] == pytest.approx(0.25)
    assert ci["low"] == pytest.approx(0.25) and ci["high"] == pytest.approx(0.25)


def test_paired_bootstrap_weighted_mean_is_a_loss_per_token():
    nll_a, nll_b, tokens = np.array([10.0, 30.0]), np.array([8.0, 20.0]), np.array([10.0, 30.0])
    ci = stats.paired_bootstrap(nll_a / tokens, nll_b / tokens, weights=tokens, resamples=200)
    assert ci["diff"] == pytest.approx((40.0 - 28.0) / 40.0)


def test_paired_bootstrap_covers_the_true_difference():
    """95% intervals of a mean difference with known mean 0.1 cover it about 95% of the time."""
    rng = np.random.default_rng(2)
    covered = 0
    for k in range(300):
        b = rng.normal(0, 1, 200)
        a = b + 0.1 + rng.normal(0, 0.5, 200)
        ci = stats.paired_bootstrap(a, b, resamples=400, seed=k)
        covered += ci["low"] <= 0.1 <= ci["high"]
    assert covered / 300 == pytest.approx(0.95, abs=0.04)


def test_law_fit_recovers_a_plane_with_noise_and_its_leave_one_out_error():
    rng = np.random.default_rng(0)
    R, L = rng.uniform(2, 4, 40), rng.uniform(5, 7, 40)
    Z = 1.0 + 0.5 * R - 0.25 * L + rng.normal(0, 0.01, 40)
    fit = stats.law_fit(R, L, Z)
    assert fit["a"] == pytest.approx(1.0, abs=0.05)
    assert fit["b"] == pytest.approx(0.5, abs=0.01)
    assert fit["c"] == pytest.approx(-0.25, abs=0.01)
    assert fit["rmse"] == pytest.approx(0.01, rel=0.3)
    assert fit["rmse"] < fit["loo_rmse"] < 0.015  # out of sample a little worse, still the noise
    assert fit["points"] == 40


def test_law_fit_on_pure_noise_predicts_no_better_than_a_constant():
    rng = np.random.default_rng(3)
    R, L, Z = rng.normal(size=12), rng.normal(size=12), rng.normal(size=12)
    fit = stats.law_fit(R, L, Z)
    assert fit["loo_rmse"] > fit["std_Z"]


def test_spearman_of_monotone_sequences():
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)

import numpy as np

from credit.drift import bin_edges, bin_proportions, mean_shift, psi


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    edges = bin_edges(ref)
    expected = bin_proportions(ref, edges)
    assert psi(expected, expected) == 0
    assert psi(expected, bin_proportions(rng.normal(0, 1, 5000), edges)) < 0.02
    assert psi(expected, bin_proportions(rng.normal(1, 1, 5000), edges)) > 0.25


def test_integer_columns_get_deduplicated_edges():
    edges = bin_edges(np.array([0] * 50 + [1] * 30 + [2] * 20))
    assert edges == sorted(set(edges))
    assert bin_proportions(np.array([0, 1, 2, 2]), edges).sum() == 1


def test_mean_shift_in_standard_deviations():
    assert mean_shift(np.array([1.0, 3.0]), ref_mean=0.0, ref_std=2.0) == 1.0

"""Yaw-stratified epoch sampling: bin shares, determinism, empty bins, bad shares."""

from __future__ import annotations

import numpy as np
import pytest

from training.sampling import BIN_SHARES, epoch_order, sampling_probabilities, yaw_bins

SHARE_TOLERANCE = 0.01  # 200,000 draws: the standard error of a share is ≈0.001


def test_yaw_bins_follow_the_benchmark_edges_for_either_sign():
    yaw = np.array([0.0, -30.0, 30.0, 30.5, -60.0, 60.1, -89.0, 120.0])
    assert yaw_bins(yaw).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_each_bin_gets_its_share_of_the_draws():
    rng = np.random.default_rng(0)
    yaw = np.concatenate([rng.uniform(-30, 30, 5400), rng.uniform(31, 60, 2600), rng.uniform(-95, -61, 2000)])
    p = sampling_probabilities(yaw)
    assert p.shape == yaw.shape and np.isclose(p.sum(), 1.0)
    draws = np.concatenate([epoch_order(p, seed) for seed in range(20)])
    got = np.bincount(yaw_bins(yaw[draws]), minlength=3) / len(draws)
    np.testing.assert_allclose(got, BIN_SHARES, atol=SHARE_TOLERANCE)
    # inside a bin every crop is equally likely
    assert np.ptp(p[:5400]) == 0 and np.ptp(p[8000:]) == 0


def test_epoch_order_is_reproducible_and_changes_with_the_seed():
    p = sampling_probabilities(np.linspace(-90, 90, 500))
    a, b, c = epoch_order(p, 7), epoch_order(p, 7), epoch_order(p, 8)
    assert len(a) == 500 and a.min() >= 0 and a.max() < 500
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_an_empty_bin_hands_its_share_to_the_others():
    yaw = np.array([5.0, 10.0, 45.0])  # nobody beyond 60°
    p = sampling_probabilities(yaw, (0.4, 0.3, 0.3))
    np.testing.assert_allclose(p, [0.4 / 0.7 / 2, 0.4 / 0.7 / 2, 0.3 / 0.7])


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.5, -0.1, 0.6), (0.0, 0.0, 0.0)])
def test_bad_shares_are_refused(shares):
    with pytest.raises(ValueError, match="bin shares"):
        sampling_probabilities(np.zeros(3), shares)


def test_shares_only_on_empty_bins_are_refused():
    with pytest.raises(ValueError, match="no crop"):
        sampling_probabilities(np.zeros(3), (0.0, 0.5, 0.5))

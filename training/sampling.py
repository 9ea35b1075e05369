"""Which training crops an epoch visits: yaw-stratified sampling.

The benchmark's balanced NME weighs the |yaw| bins [0,30], (30,60], (60,90] equally, but the
trusted training crops are 54 % frontal (10,270 / 4,971 / 3,766 of 19,007), and the (60,90] bin
carries about a third of the balanced error. An epoch therefore draws its crops with replacement
so that each bin takes a fixed share of the steps (:data:`BIN_SHARES`) — more profile faces than the
data holds, but not a full third each, so the frontal bin still sees most of its crops.
"""

from __future__ import annotations

import numpy as np

from .metrics import YAW_BINS

# the benchmark's inner bin edges (30°, 60°); here beyond 90° counts as the last bin
YAW_BIN_EDGES_DEG = tuple(hi for _, _, hi in YAW_BINS[:-1])
BIN_SHARES = (0.40, 0.30, 0.30)  # share of an epoch's draws per bin: frontal, half-profile, profile


def yaw_bins(yaw_deg: np.ndarray) -> np.ndarray:
    """(N,) yaw in degrees (any sign) → (N,) bin index 0, 1, 2 by |yaw| (edges inclusive on the left bin)."""
    return np.searchsorted(np.asarray(YAW_BIN_EDGES_DEG), np.abs(np.asarray(yaw_deg, float)), side="left")


def sampling_probabilities(yaw_deg: np.ndarray, shares: tuple[float, ...] = BIN_SHARES) -> np.ndarray:
    """(N,) per-crop draw probabilities (sum 1): bin b gets ``shares[b]``, split evenly inside it.

    A bin with no crops gives its share to the others in proportion to theirs.
    """
    bins = yaw_bins(yaw_deg)
    if len(shares) != len(YAW_BIN_EDGES_DEG) + 1 or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError(f"need {len(YAW_BIN_EDGES_DEG) + 1} non-negative bin shares, got {shares}")
    counts = np.bincount(bins, minlength=len(shares))
    share = np.where(counts > 0, np.asarray(shares, float), 0.0)
    if share.sum() == 0:
        raise ValueError("no crop falls in a bin with a positive share")
    per_crop = share / share.sum() / np.maximum(counts, 1)
    return per_crop[bins]


def epoch_order(probabilities: np.ndarray, seed: int) -> np.ndarray:
    """(N,) crop indices for one epoch: N draws with replacement, the same for the same seed."""
    n = len(probabilities)
    return np.random.default_rng(seed).choice(n, size=n, replace=True, p=probabilities)

"""The protected protocol's split of the dev folder (training.dev_split): fixed, disjoint, yaw-stratified."""

from __future__ import annotations

import numpy as np
import pytest

from training.dev_split import half_indices, split_indices
from training.metrics import YAW_BINS, yaw_bin_mask


def _bin_counts(yaw: np.ndarray) -> list[int]:
    return [int(yaw_bin_mask(yaw, lo, hi).sum()) for _, lo, hi in YAW_BINS]


def test_the_halves_cover_every_image_once_and_share_every_yaw_bin():
    rng = np.random.default_rng(3)
    yaw = rng.uniform(0, 95, 301) * rng.choice([-1, 1], 301)
    names = [f"image{i:05d}.jpg" for i in rng.permutation(301)]
    halves = split_indices(names, yaw)
    both = np.concatenate([halves["tuning"], halves["report"]])
    assert sorted(both.tolist()) == list(range(301))
    for a, b in zip(_bin_counts(np.abs(yaw[halves["tuning"]])), _bin_counts(np.abs(yaw[halves["report"]]))):
        assert a - b in (0, 1)  # the tuning half takes the odd one of a bin
    # stratified within a bin as well: the halves' yaw quantiles agree to a step of the order
    assert np.abs(np.quantile(np.abs(yaw[halves["tuning"]]), [0.25, 0.5, 0.75]) - np.quantile(
        np.abs(yaw[halves["report"]]), [0.25, 0.5, 0.75])).max() < 3.0  # fmt: skip


def test_the_split_depends_on_the_files_alone_not_on_their_order():
    yaw = np.array([10.0, 10.0, 45.0, 70.0, 20.0, 80.0])
    names = ["b.jpg", "a.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    first = split_indices(names, yaw)
    order = [5, 3, 1, 0, 4, 2]
    again = split_indices([names[i] for i in order], yaw[order])
    for half in ("tuning", "report"):
        assert sorted(names[i] for i in first[half]) == sorted(names[order[i]] for i in again[half])
    assert sorted(names[i] for i in first["tuning"]) == ["a.jpg", "c.jpg", "d.jpg", "e.jpg"]  # ties: by name
    with pytest.raises(ValueError, match="2 names but 6 yaw"):
        split_indices(names[:2], yaw)


def test_the_dev_folder_splits_into_500_and_499(shared_data):
    folder = shared_data / "aflw2000_dev"
    tuning, report, every = (half_indices(folder, h) for h in ("tuning", "report", "all"))
    assert (len(tuning), len(report), len(every)) == (500, 499, 999)
    assert not set(tuning.tolist()) & set(report.tolist())
    with pytest.raises(ValueError, match="half must be one of"):
        half_indices(folder, "test")

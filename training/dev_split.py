"""The protected protocol: ``aflw2000_dev`` split once into a tuning half and a report half.

Every choice (epochs, thresholds, averaging, landmark model, detector constants) is made on the
**tuning** half or on training crops; the **report** half is evaluated once per model that is to be
shipped, and that figure is the one the README and the model card state. The rule is fixed and
needs nothing but the folder's own files, so anyone can re-derive the halves:

1. each image goes to its |yaw| bin of the benchmark ([0, 30], (30, 60], (60, 90]: training.metrics'
   ``YAW_BINS``, from ``yaw.npy``);
2. within a bin, images are ordered by |yaw|, then by file name;
3. the 1st, 3rd, 5th … of that order form the tuning half, the 2nd, 4th, 6th … the report half.

So both halves hold each bin's faces in the same proportion and with the same spread of yaw
(within one image per bin). Figures measured on the whole dev folder before this split existed were
chosen on both halves; docs/training-journal.md says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import YAW_BINS, yaw_bin_mask

HALVES = ("all", "tuning", "report")


def split_indices(names: list[str], abs_yaw: np.ndarray) -> dict[str, np.ndarray]:
    """``{"tuning": idx, "report": idx}``: sorted (N,) index arrays into ``names`` (see the module's rule)."""
    abs_yaw = np.abs(np.asarray(abs_yaw, dtype=np.float64))
    if len(names) != len(abs_yaw):
        raise ValueError(f"{len(names)} names but {len(abs_yaw)} yaw values")
    halves: dict[str, list[int]] = {"tuning": [], "report": []}
    for _, lo, hi in YAW_BINS:
        members = [int(i) for i in np.flatnonzero(yaw_bin_mask(abs_yaw, lo, hi))]
        members.sort(key=lambda i: (abs_yaw[i], names[i]))
        halves["tuning"] += members[0::2]
        halves["report"] += members[1::2]
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in halves.items()}


@dataclass(frozen=True, slots=True, eq=False)
class DevAnnotations:
    """One half of a dev folder's annotations, in ``list.txt`` order."""

    names: list[str]  # image file names
    gt: np.ndarray  # (N, 68, 3) float64 ground-truth landmarks, image px
    rois: np.ndarray  # (N, 4) the protocol's roi boxes (left, top, right, bottom), image px
    abs_yaw: np.ndarray  # (N,) |yaw| degrees

    @classmethod
    def load(cls, folder: str | Path, half: str = "all") -> DevAnnotations:
        """``half`` (one of :data:`HALVES`) of ``folder``'s list.txt, pts68.npy, roi_box.npy and yaw.npy."""
        folder = Path(folder)
        keep = half_indices(folder, half)
        names = (folder / "list.txt").read_text().split()
        gt = np.load(folder / "pts68.npy").transpose(0, 2, 1).astype(np.float64)
        abs_yaw = np.abs(np.load(folder / "yaw.npy"))
        return cls([names[i] for i in keep], gt[keep], np.load(folder / "roi_box.npy")[keep], abs_yaw[keep])


def half_indices(folder: str | Path, half: str) -> np.ndarray:
    """(N,) indices into ``folder``'s ``list.txt`` of ``half`` (one of :data:`HALVES`)."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}; got {half!r}")
    folder = Path(folder)
    names = (folder / "list.txt").read_text().split()
    if half == "all":
        return np.arange(len(names))
    return split_indices(names, np.load(folder / "yaw.npy"))[half]

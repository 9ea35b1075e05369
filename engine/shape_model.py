"""A statistical model of the 68 landmarks' 3D shape, which regularises the network's landmarks.

The network reads each landmark from its own pixel of the position map, so its errors are partly
independent from point to point: a jaw point drifts off the jaw line, one eye corner sits low.
Real faces vary in far fewer ways. The model is a linear one::

    X(a) = mean + Σ_k a_k · modes[k]           (68, 3), a ~ N(0, std²)

learned by :mod:`engine.training.landmark_model` as a principal-component analysis of the training
labels' 68 points (aligned by similarity, mirrored copies included, so it is left/right symmetric).
:meth:`LandmarkShapeModel.fit` finds the similarity (scale s, rotation R, translation t) and
coefficients a that minimise::

    ‖P − (s R X(a) + t)‖²  +  prior_weight · s² · ‖a / std‖²

for the network's points P, by alternating the closed-form similarity (engine.pose.fit_similarity)
with the closed-form ridge solve for a, and returns s R X(a) + t. The s² factor makes the prior independent
of the points' units (the data term scales with s² too). The fit works in any frame whose three
axes share one unit and that has the handedness of the engine's frames (x right, y down, z toward
the camera): crop pixels or image pixels alike. Measured on AFLW2000-3D with the default model
(weights/README.md): balanced 2D NME 4.00 → 3.92 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import BundleFormatError
from .layout import N_LANDMARKS
from .pose import fit_similarity

FIT_MAX_ITERATIONS = 50  # alternations of pose and shape (linear convergence: ≈ 10⁻⁴ of the size per 4)
FIT_TOLERANCE = 1e-6  # stop once no point moves by more than this share of the points' RMS radius: ≈ 2 ms a face


@dataclass(frozen=True, slots=True, eq=False)
class LandmarkShapeModel:
    mean: np.ndarray  # (68, 3) float64, centred, unit RMS distance from the centre
    modes: np.ndarray  # (K, 68, 3) float64, orthonormal when flattened
    std: np.ndarray  # (K,) float64 > 0, standard deviation of each coefficient (units of ``mean``)
    prior_weight: float  # ≥ 0: 0 is the plain least-squares projection onto the model

    def __post_init__(self) -> None:
        k = len(self.std)
        if self.mean.shape != (N_LANDMARKS, 3) or self.modes.shape != (k, N_LANDMARKS, 3) or k == 0:
            raise ValueError(
                f"landmark model needs mean (68, 3), modes (K, 68, 3), std (K,); got {self.mean.shape}, "
                f"{self.modes.shape}, {self.std.shape}"
            )
        if not (np.all(self.std > 0) and np.isfinite(self.prior_weight) and self.prior_weight >= 0):
            raise ValueError("landmark model: std must be positive and prior_weight finite and ≥ 0")

    @property
    def n_modes(self) -> int:
        return len(self.std)

    def shape(self, coefficients: np.ndarray) -> np.ndarray:
        """(K,) coefficients → (68, 3) model shape in the model's own frame."""
        return self.mean + np.tensordot(coefficients, self.modes, axes=1)

    def fit(self, points: np.ndarray) -> np.ndarray:
        """(68, 3) points → (68, 3) float64: the nearest model face (energy in the module docstring),
        in the points' frame."""
        p = np.asarray(points, np.float64)
        if p.shape != (N_LANDMARKS, 3) or not np.isfinite(p).all():
            raise ValueError(f"landmark fit needs finite (68, 3) points, got shape {p.shape}")
        basis = self.modes.reshape(self.n_modes, -1).T  # (204, K)
        shrink = 1.0 + self.prior_weight / self.std**2
        tolerance = FIT_TOLERANCE * np.sqrt(((p - p.mean(axis=0)) ** 2).sum(axis=1).mean())
        a = np.zeros(self.n_modes)
        fitted = None
        for _ in range(FIT_MAX_ITERATIONS):
            x = self.shape(a)
            s, r, t = fit_similarity(x, p)
            current = s * x @ r.T + t
            if fitted is not None and np.abs(current - fitted).max() < tolerance:
                break
            fitted = current
            # P − t ≈ s R (mean + B a): in the model's frame, (P − t) R / s ≈ mean + B a, and the energy
            # is s² (‖B a − local‖² + w ‖a / std‖²); with orthonormal B the ridge solve is diagonal
            local = ((p - t) @ r / s).reshape(-1) - self.mean.reshape(-1)
            a = (basis.T @ local) / shrink
        return current

    def save(self, file: str | Path | BinaryIO) -> None:
        """Write an ``.npz`` (a path, or an open binary file)."""
        np.savez_compressed(
            file, mean=self.mean, modes=self.modes, std=self.std, prior_weight=np.float64(self.prior_weight)
        )


def load_landmark_model(path: str | Path) -> LandmarkShapeModel:
    """Read a model written by :meth:`LandmarkShapeModel.save`; BundleFormatError when malformed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return LandmarkShapeModel(
                mean=z["mean"].astype(np.float64),
                modes=z["modes"].astype(np.float64),
                std=z["std"].astype(np.float64),
                prior_weight=float(z["prior_weight"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise BundleFormatError(f"landmark model {path} is unreadable: {exc}") from exc

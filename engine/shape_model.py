"""A statistical model of the face's 3D shape, which regularises the network's 68 landmarks.

The network reads each landmark from its own pixel of the position map, so its errors are partly
independent from point to point: a jaw point drifts off the jaw line, one eye corner sits low.
Real faces vary in far fewer ways. The model is a linear one over the 68 landmarks and, optionally,
D more points read from fixed pixels of the output map ("map points": the cheeks, forehead, nose…)::

    X(a) = mean + Σ_k a_k · modes[k]           (68 + D, 3), a ~ N(0, std²)

learned by :mod:`training.landmark_model` as a principal-component analysis of the training
labels' points (aligned by similarity, mirrored copies included, so it is left/right symmetric).
:meth:`LandmarkShapeModel.fit` finds the similarity (scale s, rotation R, translation t) and
coefficients a that minimise::

    Σ_i w_i ‖P_i − (s R X_i(a) + t)‖²  +  prior_weight · s² · ‖a / std‖²

for the network's points P (w = 1 for a landmark, ``map_weight`` · 68 / D for a map point, so the
map points together weigh ``map_weight`` times the landmarks), by alternating the closed-form
similarity (engine.pose.fit_similarity) with the closed-form ridge solve for a, and returns the 68
landmarks of s R X(a) + t. The s² factor makes the prior independent of the points' units (the
data term scales with s² too). The map points carry the face's surface into the fit: the jaw line
follows the cheeks instead of its 17 read-out pixels alone. The fit works in any frame whose three
axes share one unit and that has the handedness of the engine's frames (x right, y down, z toward
the camera): crop pixels or image pixels alike. What the fit gains on AFLW2000-3D: docs/decisions.md,
"Landmark model".
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    mean: np.ndarray  # (68 + D, 3) float64, centred, unit RMS distance from the centre
    modes: np.ndarray  # (K, 68 + D, 3) float64, orthonormal when flattened
    std: np.ndarray  # (K,) float64 > 0, standard deviation of each coefficient (units of ``mean``)
    prior_weight: float  # ≥ 0: 0 is the plain least-squares projection onto the model
    # (D,) int64 flat ids (row · map_size + column) of the output-map pixels read as map points
    map_pixels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    map_size: int = 0  # side of the output map the ids index (the bundle's input size); 0 when D = 0
    map_weight: float = 0.0  # the map points' total weight, in landmarks (each weighs map_weight · 68 / D)
    _weights: np.ndarray = field(init=False, repr=False)  # (68 + D,) point_weights(), fixed per model
    # (K, 3(68 + D)) the ridge solve, fixed per model: coefficients = _solve @ (local offsets, flattened)
    _solve: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        k, d = len(self.std), len(self.map_pixels)
        n = N_LANDMARKS + d
        if self.mean.shape != (n, 3) or self.modes.shape != (k, n, 3) or k == 0:
            raise ValueError(
                f"landmark model needs mean (68 + D, 3), modes (K, 68 + D, 3), std (K,) with D = {d} map "
                f"pixels; got {self.mean.shape}, {self.modes.shape}, {self.std.shape}"
            )
        if not (np.all(self.std > 0) and np.isfinite(self.prior_weight) and self.prior_weight >= 0):
            raise ValueError("landmark model: std must be positive and prior_weight finite and ≥ 0")
        if d and not (
            self.map_size > 0
            and np.all((self.map_pixels >= 0) & (self.map_pixels < self.map_size**2))
            and np.isfinite(self.map_weight)
            and self.map_weight >= 0
        ):
            raise ValueError(
                f"landmark model: map pixels must index a {self.map_size}² map and map_weight be finite and ≥ 0"
            )
        weights = self.point_weights()
        basis = self.modes.reshape(k, -1).T  # (3N, K)
        w3 = np.repeat(weights, 3)
        normal = basis.T @ (basis * w3[:, None]) + np.diag(self.prior_weight / self.std**2)
        object.__setattr__(self, "_weights", weights)
        object.__setattr__(self, "_solve", np.linalg.inv(normal) @ (basis.T * w3))

    @property
    def n_modes(self) -> int:
        return len(self.std)

    @property
    def n_map_points(self) -> int:
        return len(self.map_pixels)

    def point_weights(self) -> np.ndarray:
        """(68 + D,) the fit's weight of each point: 1 per landmark, map_weight · 68 / D per map point."""
        d = self.n_map_points
        return np.concatenate([np.ones(N_LANDMARKS), np.full(d, self.map_weight * N_LANDMARKS / max(d, 1))])

    def shape(self, coefficients: np.ndarray) -> np.ndarray:
        """(K,) coefficients → (68 + D, 3) model shape in the model's own frame."""
        return self.mean + np.tensordot(coefficients, self.modes, axes=1)

    def fit(self, points: np.ndarray, out_map: np.ndarray | None = None) -> np.ndarray:
        """(68, 3) points (and, for a model with map points, the (S, S, 3) map they were read from, in
        the same frame) → (68, 3) float64: the landmarks of the nearest model face (energy in the module
        docstring), in the points' frame."""
        p = np.asarray(points, np.float64)
        if p.shape != (N_LANDMARKS, 3) or not np.isfinite(p).all():
            raise ValueError(f"landmark fit needs finite (68, 3) points, got shape {p.shape}")
        if self.n_map_points:
            s = self.map_size
            if out_map is None or out_map.shape != (s, s, 3):
                got = None if out_map is None else out_map.shape
                raise ValueError(f"this landmark model reads {s}² output maps as well; got {got}")
            p = np.concatenate([p, out_map.reshape(-1, 3)[self.map_pixels].astype(np.float64)])
            if not np.isfinite(p).all():
                raise ValueError("landmark fit needs a finite output map")
        radius = np.sqrt(((p - p.mean(axis=0)) ** 2).sum(axis=1).mean())
        a = np.zeros(self.n_modes)
        fitted = None
        for _ in range(FIT_MAX_ITERATIONS):
            x = self.shape(a)
            s, r, t = fit_similarity(x, p, self._weights)
            current = s * x @ r.T + t
            if fitted is not None and np.abs(current - fitted).max() < FIT_TOLERANCE * radius:
                break
            fitted = current
            # P − t ≈ s R (mean + B a): in the model's frame, (P − t) R / s ≈ mean + B a, and the energy
            # is s² (Σ w ‖B a − local‖² + prior ‖a / std‖²): a ridge solve with a fixed matrix
            local = ((p - t) @ r / s).reshape(-1) - self.mean.reshape(-1)
            a = self._solve @ local
        return current[:N_LANDMARKS]

    def save(self, file: str | Path | BinaryIO) -> None:
        """Write an ``.npz`` (a path, or an open binary file)."""
        np.savez_compressed(
            file,
            mean=self.mean,
            modes=self.modes,
            std=self.std,
            prior_weight=np.float64(self.prior_weight),
            map_pixels=self.map_pixels.astype(np.int64),
            map_size=np.int64(self.map_size),
            map_weight=np.float64(self.map_weight),
        )


def load_landmark_model(path: str | Path) -> LandmarkShapeModel:
    """Read a model written by :meth:`LandmarkShapeModel.save` (files from before the map points hold
    the 68 landmarks only); BundleFormatError when malformed."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            dense = "map_pixels" in z.files
            return LandmarkShapeModel(
                mean=z["mean"].astype(np.float64),
                modes=z["modes"].astype(np.float64),
                std=z["std"].astype(np.float64),
                prior_weight=float(z["prior_weight"]),
                map_pixels=z["map_pixels"].astype(np.int64) if dense else np.zeros(0, np.int64),
                map_size=int(z["map_size"]) if dense else 0,
                map_weight=float(z["map_weight"]) if dense else 0.0,
            )
    except (OSError, KeyError, ValueError) as exc:
        raise BundleFormatError(f"landmark model {path} is unreadable: {exc}") from exc

"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012): smoothing whose cutoff rises with speed.

A still face's landmarks jitter by a fraction of a pixel from frame to frame; a turning head moves
them by many. A fixed low-pass filter either leaves the jitter or lags behind the turn; the One Euro
filter low-passes each point with a cutoff of ``min_cutoff + beta · speed`` (speed itself low-passed
at ``d_cutoff``), so it smooths hard at rest and follows motion closely. Here it filters arrays of
points, ``(..., D)``, a point's speed being the length of its D-vector's rate of change; values are
divided by a ``unit`` (the face's size) so that one set of parameters suits faces of every size.
"""

from __future__ import annotations

import math

import numpy as np

MIN_CUTOFF_HZ = 1.0  # cutoff at rest: a still face's jitter (mostly > 3 Hz at video rates) is damped ≥ 3×
BETA = 30.0  # cutoff added per face size per second of speed: a head turning at ½ face/s is filtered at 16 Hz
D_CUTOFF_HZ = 1.0  # cutoff of the speed estimate (the filter's authors' default)


def smoothing_factor(cutoff_hz: float | np.ndarray, dt: float) -> float | np.ndarray:
    """The exponential smoothing factor of a first-order low-pass at ``cutoff_hz`` for a step of ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters a sequence of same-shaped ``(..., D)`` arrays given with increasing times (s).

    :meth:`reset` forgets the past (after a gap the next value passes unfiltered)."""

    def __init__(self, *, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA, d_cutoff: float = D_CUTOFF_HZ):
        if min_cutoff <= 0 or beta < 0 or d_cutoff <= 0:
            raise ValueError(f"need min_cutoff > 0, beta >= 0, d_cutoff > 0; got {min_cutoff}, {beta}, {d_cutoff}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float, unit: float = 1.0) -> np.ndarray:
        """The filtered value of ``x`` (float64, same shape) at time ``t`` s; ``unit`` scales speeds
        (a speed of one ``unit`` per second raises the cutoff by ``beta`` Hz)."""
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros(x.shape[:-1]), t
            return x.copy()
        dt = t - self._t
        speed = np.linalg.norm(x - self._x, axis=-1) / (dt * unit)
        self._dx = self._dx + smoothing_factor(self.d_cutoff, dt) * (speed - self._dx)
        alpha = smoothing_factor(self.min_cutoff + self.beta * self._dx, dt)[..., None]
        self._x = self._x + alpha * (x - self._x)
        self._t = t
        return self._x.copy()

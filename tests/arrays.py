"""Array comparison for tests: one failure message that names the worst element (docs/architecture.md, "Style")."""

from __future__ import annotations

import numpy as np


def assert_close(actual, expected, tol: float, what: str) -> None:
    """Assert ``|actual − expected| <= tol`` everywhere (broadcasting); NaN must match NaN.

    On failure the message gives ``what``, the worst multi-index, both values there and the count
    of elements outside the tolerance.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    try:
        a, e = np.broadcast_arrays(a, e)
    except ValueError as exc:
        raise AssertionError(f"{what}: shapes {np.shape(actual)} and {np.shape(expected)} differ") from exc
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if (nan_a != nan_e).any():
        idx = np.unravel_index(np.argmax(nan_a != nan_e), a.shape)
        raise AssertionError(f"{what}: NaN mismatch at {idx}: actual {a[idx]}, expected {e[idx]}")
    err = np.where(nan_a, 0.0, np.abs(a - e))
    if err.size == 0:
        return
    idx = np.unravel_index(np.argmax(err), err.shape)
    if not err[idx] <= tol:
        n_bad = int((err > tol).sum())
        raise AssertionError(
            f"{what}: worst error {err[idx]:.6g} > tol {tol:g} at index {tuple(int(i) for i in idx)} "
            f"(actual {a[idx]:.6g}, expected {e[idx]:.6g}); {n_bad} of {err.size} elements outside"
        )

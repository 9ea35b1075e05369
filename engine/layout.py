"""The UV layout: which pixels of a position map are face, and what each one means (PRNet §3.1).

A position map is an S×S×3 image whose pixel (row v, column u) stores the 3D position of the face
point with UV coordinate (u, v). The layout fixes, once for every model that shares it:

* ``face_mask`` — which pixels hold face points; the dense mesh has one vertex per mask pixel,
  in row-major order (``face_indices``);
* ``keypoints_uv`` — the exact (u, v) of the 68 landmarks (sub-pixel, read out bilinearly);
* ``triangles`` — two per grid cell over the mask, wound counter-clockwise as seen by the camera;
* ``weight_mask`` — the paper's loss weights (68 landmarks : eyes/nose/mouth : face : outside =
  16 : 4 : 3 : 0);
* ``canonical_vertices`` — the mean face at every mask pixel, in millimetres, frontal, in the image
  frame (x right, y down, z toward the camera), centred at the origin; the target of pose fits;
* ``mirror_uv`` — for every mask pixel, the (u, v) of its left/right symmetric point.

Layouts are stored as ``.npz`` files; no I/O happens at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LayoutError

N_LANDMARKS = 68
# A layout "mirrors by columns" when every face pixel's mirror point lies within this many map px of
# the same row's mirrored column. Ours (bfm-neckfree-256-v1) is within 1.17 px, PRNet's exactly 0: a
# map's columns can then be flipped to mirror the face (flip augmentation, flip averaging).
COLUMN_MIRROR_TOLERANCE_PX = 1.5

_ARRAYS = ("face_mask", "keypoints_uv", "triangles", "weight_mask", "canonical_vertices", "mirror_uv")


@dataclass(frozen=True, slots=True, eq=False)
class UVLayout:
    layout_id: str
    face_mask: np.ndarray  # (S, S) bool, True on face pixels
    keypoints_uv: np.ndarray  # (68, 2) float32, (u, v) in map pixels (u = column, v = row)
    triangles: np.ndarray  # (T, 3) int32, indices into the face pixels (row-major order)
    weight_mask: np.ndarray  # (S, S) float32, loss weights 16/4/3/0
    canonical_vertices: np.ndarray  # (N, 3) float32, mm, x right / y down / z toward camera
    mirror_uv: np.ndarray  # (N, 2) float32, (u, v) of each face pixel's symmetric point

    def __post_init__(self) -> None:
        s = self.size
        n = int(self.face_mask.sum())
        checks = {
            "face_mask": self.face_mask.shape == (s, s) and self.face_mask.dtype == bool,
            "keypoints_uv": self.keypoints_uv.shape == (N_LANDMARKS, 2),
            "triangles": self.triangles.ndim == 2 and self.triangles.shape[1] == 3,
            "weight_mask": self.weight_mask.shape == (s, s),
            "canonical_vertices": self.canonical_vertices.shape == (n, 3),
            "mirror_uv": self.mirror_uv.shape == (n, 2),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise LayoutError(f"layout {self.layout_id!r}: inconsistent arrays {bad} for size {s}, {n} face pixels")
        if self.triangles.size and (self.triangles.min() < 0 or self.triangles.max() >= n):
            raise LayoutError(f"layout {self.layout_id!r}: triangle index outside 0..{n - 1}")

    @property
    def size(self) -> int:
        """Side S of the position map in pixels."""
        return int(self.face_mask.shape[0])

    @property
    def face_indices(self) -> np.ndarray:
        """(N,) int64 flat row-major indices of the face pixels; vertex k of the mesh is pixel k here."""
        return np.flatnonzero(self.face_mask.ravel())

    @property
    def n_vertices(self) -> int:
        return int(self.face_mask.sum())

    @property
    def mirrors_by_columns(self) -> bool:
        """True when flipping a map's columns mirrors the face (see COLUMN_MIRROR_TOLERANCE_PX)."""
        rows, cols = np.nonzero(self.face_mask)
        flipped = np.stack([(self.size - 1) - cols, rows], axis=1)
        off = np.abs(self.mirror_uv - flipped).max(initial=0.0)
        return bool(off <= COLUMN_MIRROR_TOLERANCE_PX)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            Path(path),
            layout_id=np.array(self.layout_id),
            face_mask=self.face_mask.astype(np.uint8),
            keypoints_uv=self.keypoints_uv.astype(np.float32),
            triangles=self.triangles.astype(np.int32),
            weight_mask=self.weight_mask.astype(np.float32),
            canonical_vertices=self.canonical_vertices.astype(np.float32),
            mirror_uv=self.mirror_uv.astype(np.float32),
        )


def load_layout(path: str | Path) -> UVLayout:
    """Read a layout ``.npz`` written by :meth:`UVLayout.save`; raises :class:`LayoutError` if malformed."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"UV layout file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("layout_id", *_ARRAYS) if k not in z.files]
            if missing:
                raise LayoutError(f"UV layout {path} lacks arrays {missing}")
            return UVLayout(
                layout_id=str(z["layout_id"]),
                face_mask=z["face_mask"].astype(bool),
                keypoints_uv=z["keypoints_uv"].astype(np.float32),
                triangles=z["triangles"].astype(np.int32),
                weight_mask=z["weight_mask"].astype(np.float32),
                canonical_vertices=z["canonical_vertices"].astype(np.float32),
                mirror_uv=z["mirror_uv"].astype(np.float32),
            )
    except (OSError, ValueError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"UV layout {path} is unreadable: {exc}") from exc


def default_layout() -> UVLayout:
    """The layout of the shipped model: its bundle's ``layout.npz`` (computed by
    training.layout_builder from the Basel Face Model; the one copy of it the repository holds)."""
    from .bundle import LAYOUT_FILE, default_bundle_path

    return load_layout(default_bundle_path() / LAYOUT_FILE)


def grid_triangles(face_mask: np.ndarray) -> np.ndarray:
    """Two triangles per grid cell over ``face_mask``: (T, 3) int32 indices into its row-major face pixels.

    A cell with corners a=(v,u), b=(v,u+1), c=(v+1,u), d=(v+1,u+1) gives triangles (a, c, b) and
    (b, c, d), each kept when all three corners are face pixels. In the image frame (y down) with the
    face toward the camera this order is counter-clockwise as the camera sees it, so normals point
    toward +z (the viewer) after the y-down → y-up flip done by exporters.
    """
    mask = np.asarray(face_mask, dtype=bool)
    s0, s1 = mask.shape
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    a = index[:-1, :-1]
    b = index[:-1, 1:]
    c = index[1:, :-1]
    d = index[1:, 1:]
    tris = []
    for t in ((a, c, b), (b, c, d)):
        stacked = np.stack([x.ravel() for x in t], axis=1)
        tris.append(stacked[(stacked >= 0).all(axis=1)])
    # interleave per cell so that the order is stable and local (good for caches)
    out = np.concatenate(tris, axis=0)
    order = np.argsort(out.min(axis=1), kind="stable")
    return out[order].astype(np.int32)

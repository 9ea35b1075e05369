"""The deterministic "mean-face" model bundle used by engine and add-on tests.

A real bundle whose network ignores its input: a 256-input ResFCN (or LightFCN) of width 1/8 whose last batch norm
has gain 0 and bias 0 (sigmoid ½), on top of a mean map that is the layout's canonical face placed in
the crop. Every crop therefore yields exactly that face, which makes the whole pipeline (crop →
read-out → image frame → mesh, pose, texture, exports, Blender scene) checkable against closed-form
expectations without a trained model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.bundle import save_bundle
from engine.layout import default_layout
from engine.model import PositionMapNet
from engine.position_map import map_from_vertices, sample_map
from engine.readout import Readout

MEAN_FACE_INPUT = 256  # px: the layout's own size, so the read-out of the mean map is exact
MEAN_FACE_WIDTH = 0.125
MEAN_FACE_PX_PER_MM = 0.9  # crop px per canonical mm: a ≈ 140 px wide face in the 256 crop


def mean_face_crop(layout=None) -> np.ndarray:
    """(N, 3) float32: the canonical face in crop px (x right, y down, z toward camera, min z 0)."""
    layout = layout or default_layout()
    v = layout.canonical_vertices.astype(np.float64) * MEAN_FACE_PX_PER_MM
    v[:, :2] += (MEAN_FACE_INPUT - 1) / 2
    v[:, 2] -= v[:, 2].min()
    return v.astype(np.float32)


def mean_face_surface(layout=None) -> np.ndarray:
    """(N, 3) float32: the mean-face bundle's mesh vertices in its crop (crop px), as the engine's vertex
    read-out gives them (engine.surface_readout): :func:`mean_face_crop` inside, and the mean face at the
    smoothed outline's points (engine.mesh.vertex_uv_px) along the outer border."""
    layout = layout or default_layout()
    face_map = np.nan_to_num(map_from_vertices(mean_face_crop(layout), layout))
    return Readout.build(layout, MEAN_FACE_INPUT, base_map=face_map).vertices(face_map)


def mean_face_keypoints(layout=None) -> np.ndarray:
    """(68, 3) float32: the mean-face bundle's landmarks in its crop (crop px), as the read-out sees them."""
    layout = layout or default_layout()
    return sample_map(map_from_vertices(mean_face_crop(layout), layout), layout.face_mask, layout.keypoints_uv)


def build_mean_face_bundle(path: Path, arch: str = "ResFCN") -> Path:
    """The mean-face bundle at ``path``, on a ResFCN or (``arch="LightFCN"``, a "fast model") a LightFCN."""
    layout = default_layout()
    torch.manual_seed(0)
    model = PositionMapNet(
        input_size=MEAN_FACE_INPUT, width=MEAN_FACE_WIDTH, output_kind="mean_residual", output_scale=1.0, arch=arch
    )
    face_map = np.nan_to_num(map_from_vertices(mean_face_crop(layout), layout), nan=0.0)
    model.mean_map.copy_(torch.from_numpy(face_map.transpose(2, 0, 1))[None])
    model.init_near_mean(gain=0.0)
    save_bundle(path, name="mean-face-test", model=model, layout=layout, metadata={"licence": "test only"}, half=False)
    return path


def edit_bundle_meta(bundle: Path, edit: Callable[[dict], object]) -> None:
    """Apply ``edit`` to a bundle folder's parsed bundle.json in place and write it back."""
    path = bundle / "bundle.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))

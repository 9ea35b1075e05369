"""A found face → :class:`~engine.types.FaceReconstruction`: mesh, landmarks, visibility, pose, texture.

The face's final position map (crop px) is read out at the layout's vertices and moved to the photo's
frame; z is offset so that the face's nearest-to-far range starts at 0 (min z = 0), the landmarks
with it. Visibility comes from one z-buffer of the mesh (engine.visibility), the pose from a
similarity fit to the layout's mean face (engine.pose), the texture from the photo resampled into the
UV square (engine.texture); the triangles close or open the lip slit (engine.mouth).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .crop import CropTransform
from .layout import UVLayout
from .mesh import vertex_colors
from .mouth import mouth_triangles
from .passes import NetworkPasses
from .pose import estimate_pose, frontalize, head_pivot
from .position_map import map_from_vertices
from .texture import extract_texture
from .turns import TurnedCrop
from .types import BoundingBox, FaceReconstruction
from .visibility import ZBuffer, landmark_visibility, vertex_visibility


@dataclass(frozen=True, slots=True)
class Assembled:
    """One face and the seconds its texture took (the rest of the work is geometry)."""

    face: FaceReconstruction
    texture_seconds: float


def assemble_face(
    rgb: np.ndarray,
    roi: BoundingBox,
    out_map: np.ndarray,
    transform: CropTransform | TurnedCrop,
    *,
    passes: NetworkPasses,
    layout: UVLayout,
    uv: np.ndarray,
    texture_size: int,
    texture_mode: str,
    mouth: str,
) -> Assembled:
    """The reconstruction of one face of the RGB photo ``rgb`` (H, W, 3) uint8 from its final (S, S, 3)
    map in crop px, its crop ``transform`` and final ``roi`` (photo px); ``uv`` (N, 2) the layout's
    mesh UVs (engine.mesh.mesh_uv)."""
    vertices = transform.to_image(passes.readout.vertices(out_map)).astype(np.float32)
    landmarks = passes.landmarks(out_map, transform).astype(np.float32)
    z0 = vertices[:, 2].min()
    vertices[:, 2] -= z0
    landmarks[:, 2] -= z0
    tris = mouth_triangles(layout, mouth)
    zbuf = ZBuffer.from_mesh(vertices, tris)
    visible = vertex_visibility(vertices, tris, zbuffer=zbuf)
    pose = estimate_pose(vertices, layout)
    position_map = map_from_vertices(vertices, layout)
    t0 = time.perf_counter()
    texture, tex_mask = extract_texture(
        rgb, position_map, layout, size=texture_size, mode=texture_mode, visibility=visible
    )
    texture_seconds = time.perf_counter() - t0
    face = FaceReconstruction(
        box=roi,
        image_size=(int(rgb.shape[0]), int(rgb.shape[1])),
        layout_id=layout.layout_id,
        position_map=position_map,
        vertices=vertices,
        triangles=tris,
        uv=uv,
        vertex_colors=vertex_colors(rgb, vertices),
        vertex_visibility=visible,
        landmarks_3d=landmarks,
        landmark_visibility=landmark_visibility(landmarks, vertices, tris, zbuffer=zbuf),
        pose=pose,
        frontal_vertices=frontalize(vertices, pose).astype(np.float32),
        texture=texture,
        texture_mask=tex_mask,
        mouth=mouth,
        head_pivot=head_pivot(frontalize(landmarks, pose)),
    )
    return Assembled(face, texture_seconds)

"""Result types of the engine: frozen dataclasses whose array fields state shape, dtype, frame and unit.

Frames:
  * **image frame** — pixels of the (EXIF-upright) photo, x right, y down, z toward the camera
    (larger = nearer), z offset so that the nearest-to-far range of the face starts at 0 (min z = 0);
  * **canonical frame** — the layout's mean face: millimetres, frontal, centred at the origin,
    x right (image right = the subject's left), y down, z toward the camera.
Pose maps canonical to image: ``image ≈ scale · R @ canonical + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """An axis-aligned box in image pixels (x right, y down); ``score`` is the detector's confidence."""

    left: float
    top: float
    right: float
    bottom: float
    score: float = 1.0

    def __post_init__(self) -> None:
        if not (self.right > self.left and self.bottom > self.top):
            raise ValueError(f"empty box: left={self.left}, top={self.top}, right={self.right}, bottom={self.bottom}")

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_list(self) -> list[float]:
        return [self.left, self.top, self.right, self.bottom]


@dataclass(frozen=True, slots=True, eq=False)
class HeadPose:
    """Similarity from the canonical frame to the image frame, and its Euler angles.

    Angles (degrees) follow one convention, ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` with the standard
    right-hand-rule matrices applied to column vectors of the image frame (x right, y down, z toward
    the camera). Read in the photo: yaw > 0 turns the nose toward image right, pitch > 0 lifts the
    nose up (the face looks up), roll > 0 turns the head clockwise as the viewer sees it. Yaw lies in
    [−90, 90]; pitch and roll in (−180, 180]. At yaw = ±90 (gimbal lock) roll is set to 0.
    """

    yaw: float  # degrees
    pitch: float  # degrees
    roll: float  # degrees
    rotation: np.ndarray  # (3, 3) float64, proper rotation, canonical → image frame
    translation: np.ndarray  # (3,) float64, image px
    scale: float  # image px per canonical mm


@dataclass(frozen=True, slots=True, eq=False)
class FaceMesh:
    """A face's surface as one mesh to export or build: the reconstruction's own triangles, or a
    quad grid resampled from its position map (engine.quad_mesh)."""

    vertices: np.ndarray  # (V, 3) float32, image frame px
    faces: np.ndarray  # (F, 3) or (F, 4) int32 indices into vertices, CCW seen from the camera (y up)
    uv: np.ndarray  # (V, 2) float32 texture coords in [0, 1], v up
    vertex_colors: np.ndarray  # (V, 3) float32 RGB in [0, 1]
    frontal_vertices: np.ndarray  # (V, 3) float32, canonical frame mm (pose removed)

    @property
    def topology(self) -> str:
        return "quads" if self.faces.shape[1] == 4 else "triangles"


@dataclass(frozen=True, slots=True, eq=False)
class FaceReconstruction:
    """Everything the engine knows about one face in one photo."""

    box: BoundingBox  # the crop box used for the final pass (image px)
    image_size: tuple[int, int]  # (height, width) of the upright photo, px
    layout_id: str
    position_map: np.ndarray  # (S, S, 3) float32, image frame px, valid on the layout's face mask
    vertices: np.ndarray  # (N, 3) float32, image frame px; one per face-mask pixel, row-major
    triangles: np.ndarray  # (T, 3) int32 indices into vertices, CCW seen from the camera (y up)
    uv: np.ndarray  # (N, 2) float32 texture coords in [0, 1], OpenGL/OBJ convention (v up)
    vertex_colors: np.ndarray  # (N, 3) float32 RGB in [0, 1], sampled from the photo
    vertex_visibility: np.ndarray  # (N,) bool, True where the vertex is seen by the camera
    landmarks_3d: np.ndarray  # (68, 3) float32, image frame px (iBUG 68-point order)
    landmark_visibility: np.ndarray  # (68,) bool
    pose: HeadPose
    frontal_vertices: np.ndarray  # (N, 3) float32, canonical frame mm (pose removed)
    texture: np.ndarray  # (Ht, Wt, 3) uint8 RGB UV texture; row 0 = top of the UV square (v = 1)
    texture_mask: np.ndarray  # (Ht, Wt) bool, texels the photo shows (engine.texture's photo weight ≥ ½)
    mouth: str  # "closed" or "open": how the mesh's triangles treat the lip slit (engine.mouth)
    head_pivot: np.ndarray  # (3,) float32, canonical frame mm: where the head turns on the neck (engine.pose)

    @property
    def landmarks_2d(self) -> np.ndarray:
        """(68, 2) float32 image px (x right, y down)."""
        return self.landmarks_3d[:, :2]

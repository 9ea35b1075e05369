"""Tracking one face through video frames: detect once, then crop each frame on the last one's landmarks.

:class:`FaceTracker` turns a stream of :class:`~engine.video.VideoFrame` into :class:`TrackedFrame`
(0 or 1 face each, the largest face of the first frame that has one):

1. **Lock**: on the first frame, and whenever the face was lost, the photo search runs
   (engine.face_search: detect, settle the crop, restart doubtful crops; no quarter turns and no
   shift averaging, so that a re-lock costs one still photo at most).
2. **Follow**: every other frame is cropped on the landmark box (the box the settled crop of a
   still photo uses, engine.crop.roi_from_landmarks) of the previous frame, moved on at the speed it
   moved since the frame before, and runs the network once: no detector; a face that moved faster
   than predicted is cut again on the landmarks just found (at most :data:`RECROP_PASSES` times).
   Default: the crop and its mirror image, averaged (the mirror pair also says whether
   the crop holds a face, engine.verify); ``fast``: the crop alone, its mirror checked every
   :data:`FAST_CHECK_EVERY` frames and whenever the crop jumps.
3. **Lost**: a crop whose mirror disagreement passes engine.verify's no-face bar, or whose landmarks
   leave the frame, is no face; the tracker re-locks on that frame, and a frame where that finds
   nothing is a gap (no face; nothing is invented, and smoothing starts afresh after it).
4. **Smooth**: landmarks and dense vertices pass a One Euro filter (engine.one_euro) in units of
   the crop side; pose and landmark visibility are computed from the smoothed surface, as a photo's
   are from its surface (engine.assemble): the same frames and conventions as ``reconstruct``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .assemble import assemble_face
from .crop import CropTransform, roi_change, roi_from_landmarks
from .face_search import MIN_ROI_PX, FaceSearch
from .mouth import mouth_triangles
from .one_euro import OneEuroFilter
from .options import DEFAULT_MOUTH, DEFAULT_TEXTURE_MODE, DEFAULT_TEXTURE_SIZE
from .pose import estimate_pose, frontalize
from .turns import TurnedCrop
from .types import BoundingBox, FaceReconstruction, HeadPose
from .verify import MAX_FLIP_DISAGREEMENT
from .video import VideoFrame
from .visibility import ZBuffer, landmark_visibility

FAST_CHECK_EVERY = 5  # fast mode: the mirror check on every 5th followed frame (+20 % network time)
JUMP_CHECK = 0.15  # fast mode: a crop that moved by more than this fraction of its side is checked at once
CROP_HOLD = 0.02  # the crop stays put while the landmark box is within this (× side) of it (still-face jitter)
MIN_MOTION = 0.02  # a landmark box that moved less than this (× side) since the frame before is not extrapolated
RECROP_TOLERANCE = 0.04  # a crop whose landmarks' box lies farther off than this (× side) is cut again
RECROP_PASSES = 1  # extra passes per frame at most when the face moved faster than predicted
MIN_INSIDE = 0.5  # lost when less than this fraction of the landmarks' box lies inside the frame


@dataclass(frozen=True, slots=True, eq=False)
class TrackedFace:
    """The face in one frame, in the image frame of ``reconstruct`` (px, x right, y down, z toward the
    camera, min z of the surface = 0). ``box`` is the crop's roi; ``locked`` is True when this frame
    ran the photo search (the first frame of a track, a re-lock); ``disagreement`` the crop's mirror
    disagreement (percent, NaN when not checked). ``out_map`` (S, S, 3) crop px and ``transform`` are
    the network's raw output, for :meth:`FaceTracker.reconstruction`."""

    box: BoundingBox
    pose: HeadPose
    landmarks_3d: np.ndarray  # (68, 3) float32 image px, smoothed
    landmark_visibility: np.ndarray  # (68,) bool
    vertices: np.ndarray  # (N, 3) float32 image px, smoothed, the layout's vertex order
    frontal_vertices: np.ndarray  # (N, 3) float32 canonical mm (pose removed)
    locked: bool
    disagreement: float
    out_map: np.ndarray
    transform: CropTransform | TurnedCrop


@dataclass(frozen=True, slots=True, eq=False)
class TrackedFrame:
    """One frame: ``index`` (0 = the video's first frame), ``time`` (s), ``faces`` (empty: a gap)."""

    index: int
    time: float
    faces: tuple[TrackedFace, ...]


class FaceTracker:
    """Tracks the largest face of ``reconstructor``'s photos through frames (see the module's text).

    ``fast`` runs one network image per followed frame instead of two, on the reconstructor's fast
    model when it has one (quality ``"fast"``, engine.light_network), else on its model;
    ``smoothing=False`` gives each frame's raw result (no One Euro filter)."""

    def __init__(self, reconstructor, *, fast: bool = False, smoothing: bool = True) -> None:
        self.rec, self.fast = reconstructor, fast
        self.quality = "fast" if fast and reconstructor.has_fast_model else "full"  # whose model runs
        self.bundle = reconstructor.bundle_for(self.quality)
        passes = copy.copy(reconstructor.passes_for(self.quality))
        passes.flip_average, passes.shift_average = not fast, False
        self.passes = passes
        search = reconstructor.search
        self.search = FaceSearch(passes, search.detector, search.fallback_detector, turn_search=False)
        self.triangles = mouth_triangles(reconstructor.layout, DEFAULT_MOUTH)
        self.smoothing = smoothing
        self._vertex_filter, self._landmark_filter = OneEuroFilter(), OneEuroFilter()
        self._last: tuple[np.ndarray, BoundingBox] | None = None  # raw landmarks (image px), roi
        self._before: BoundingBox | None = None  # the landmark box of the frame before the last
        self._since_check = 0

    def track(self, frames: Iterable[VideoFrame]) -> Iterator[TrackedFrame]:
        """Yield one :class:`TrackedFrame` per frame, in order."""
        for tracked, _ in self.track_frames(frames):
            yield tracked

    def track_frames(self, frames: Iterable[VideoFrame]) -> Iterator[tuple[TrackedFrame, VideoFrame]]:
        """:meth:`track`, each result with its frame (whose pixels :meth:`reconstruction` needs)."""
        for frame in frames:
            face = self._follow(frame) if self._last is not None else None
            if face is None:
                face = self._lock(frame)
            yield TrackedFrame(frame.index, frame.time, () if face is None else (face,)), frame

    def reconstruction(self, rgb: np.ndarray, face: TrackedFace, **asset) -> FaceReconstruction:
        """The full reconstruction (texture and all) of a tracked face from its frame's RGB, as
        ``reconstruct`` makes it from a photo (unsmoothed); ``asset``: engine.assemble's texture_size,
        texture_mode, mouth."""
        options = {"texture_size": DEFAULT_TEXTURE_SIZE, "texture_mode": DEFAULT_TEXTURE_MODE, "mouth": DEFAULT_MOUTH}
        options.update(asset)
        return assemble_face(
            rgb, face.box, face.out_map, face.transform, passes=self.passes, layout=self.rec.layout,
            uv=self.rec.uv, **options,
        ).face  # fmt: skip

    # -- steps ------------------------------------------------------------------------------------
    def _lock(self, frame: VideoFrame) -> TrackedFace | None:
        found = self.search.find(frame.rgb, all_faces=False)
        self._vertex_filter.reset()
        self._landmark_filter.reset()
        self._since_check = 0
        self._last = self._before = None
        if not len(found):
            return None
        d = np.nan if found.disagreement is None else float(found.disagreement[0])
        landmarks = self.passes.landmarks(found.maps[0], found.transforms[0])
        return self._face(
            frame, found.maps[0], found.transforms[0], found.rois[0], landmarks, locked=True, disagreement=d
        )

    def _follow(self, frame: VideoFrame) -> TrackedFace | None:
        """The face cropped where the last frames' landmarks say it is now; None when the crop holds no face."""
        roi = self._predicted_roi()
        self._since_check += 1
        check = not self.fast or self._since_check >= FAST_CHECK_EVERY or roi_change(self._last[1], roi) > JUMP_CHECK
        if check:
            self._since_check = 0
        for attempt in range(RECROP_PASSES + 1):
            if check:
                direct, back, checked, transforms = self.passes.mirror_pair(frame.rgb, [roi])
                out_map = direct[0] if self.fast else 0.5 * (direct[0] + back[0])
                disagreement = float(checked[0])
            else:  # fast mode between checks: the crop alone (flip averaging is off in fast mode)
                maps, transforms = self.passes.run_network(frame.rgb, [roi])
                out_map, disagreement = maps[0], np.nan
            landmarks = self.passes.landmarks(out_map, transforms[0])
            settled = roi_from_landmarks(landmarks[:, :2])
            if attempt == RECROP_PASSES or roi_change(roi, settled) <= RECROP_TOLERANCE:
                break
            roi = settled
        if disagreement > MAX_FLIP_DISAGREEMENT:
            return None
        return self._face(frame, out_map, transforms[0], roi, landmarks, locked=False, disagreement=disagreement)

    def _predicted_roi(self) -> BoundingBox:
        """The crop for the next frame: the last frame's landmark box moved on by its change since the
        frame before (constant velocity of centre and size); not moved on when there is no frame before
        or it moved less than :data:`MIN_MOTION` (noise, which extrapolation would double); the last
        crop itself while the box lies within :data:`CROP_HOLD` of it."""
        last = roi_from_landmarks(self._last[0][:, :2])
        if roi_change(self._last[1], last) < CROP_HOLD:
            return self._last[1]  # a still face keeps its crop: the same pixels in, the same landmarks out
        if self._before is None or roi_change(self._before, last) < MIN_MOTION:
            return last
        (cx, cy), (px, py) = last.center, self._before.center
        side, before_side = max(last.width, last.height), max(self._before.width, self._before.height)
        half = max(side + (side - before_side), MIN_ROI_PX) / 2
        nx, ny = 2 * cx - px, 2 * cy - py
        return BoundingBox(nx - half, ny - half, nx + half, ny + half)

    def _face(self, frame, out_map, transform, roi, landmarks, *, locked: bool, disagreement: float):
        """The tracked face of one network map and its (68, 3) landmarks (image px); None (and the
        track lost) when the landmarks left the frame or shrank below engine.face_search's MIN_ROI_PX."""
        height, width = frame.rgb.shape[:2]
        lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        inside = np.clip(hi, 0, (width, height)) - np.clip(lo, 0, (width, height))
        if max(hi - lo) * np.sqrt(2) < MIN_ROI_PX or np.prod(inside) < MIN_INSIDE * np.prod(np.maximum(hi - lo, 1e-6)):
            self._last = self._before = None
            return None
        self._before = None if self._last is None else roi_from_landmarks(self._last[0][:, :2])
        self._last = (landmarks, roi)
        vertices = transform.to_image(self.passes.readout.vertices(out_map))
        if self.smoothing:
            unit = max(roi.width, roi.height)
            vertices = self._vertex_filter(vertices, frame.time, unit)
            landmarks = self._landmark_filter(landmarks, frame.time, unit)
        vertices, landmarks = vertices.astype(np.float32), landmarks.astype(np.float32)
        z0 = vertices[:, 2].min()
        vertices[:, 2] -= z0
        landmarks[:, 2] -= z0
        zbuf = ZBuffer.from_mesh(vertices, self.triangles)
        pose = estimate_pose(vertices, self.rec.layout)
        return TrackedFace(
            box=roi, pose=pose, landmarks_3d=landmarks,
            landmark_visibility=landmark_visibility(landmarks, vertices, self.triangles, zbuffer=zbuf),
            vertices=vertices, frontal_vertices=frontalize(vertices, pose), locked=locked,
            disagreement=disagreement, out_map=out_map, transform=transform,
        )  # fmt: skip

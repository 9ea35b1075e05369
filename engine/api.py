"""The engine's facade: ``Reconstructor.from_bundle(path, device=...)(image) -> list[FaceReconstruction]``.

One photo goes through: load (orientation, colour, size guard) → detect faces (or use given boxes)
→ crop each roi to the network input → network → read the output map at the layout's pixels and
landmarks → back to the image frame → refinement passes whose crops come from the previous pass's
landmarks (the training crops were cut that way, so they see the framing the network was trained
on), until the crop settles (restarted from larger crops when the settled one disagrees with its
mirror image: a detector box on part of a face); each pass optionally averaged with the mirrored
crop's map; the settled map optionally averaged with shifted crops'; a photo with no face, or with
a face whose crop stays doubtful, searched again turned a quarter turn each way (engine.turns) →
mesh, colours, visibility, pose, frontal vertices, UV texture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .bundle import ModelBundle, default_bundle_path, load_bundle
from .crop import CropTransform, crop_image, roi_change, roi_from_landmarks, scaled_roi
from .detect import (
    NMS_OVERLAP,
    FaceDetector,
    default_fallback_detector,
    get_detector,
    keep_distinct,
    overlap_of_smaller,
    roi_from_detection,
)
from .image_io import load_image
from .mesh import mesh_uv, vertex_colors
from .model import predict_position_maps
from .pose import estimate_pose, frontalize
from .position_map import map_from_vertices
from .readout import Readout
from .texture import extract_texture
from .turns import QUARTER_TURNS, TurnedCrop, box_from_turned, turn_image
from .types import BoundingBox, FaceReconstruction
from .verify import MAX_FLIP_DISAGREEMENT, flip_disagreement
from .visibility import ZBuffer, landmark_visibility, vertex_visibility

DEFAULT_TEXTURE_SIZE = 1024
MIN_FACE_PX = 16  # a roi smaller than this (photo px) holds too little face to reconstruct
# Landmark refinement (Reconstructor.predict), chosen on ../shared/data/aflw2000_dev with the run-8
# model, detector path (815 faces found): balanced 2D NME 4.53 % after the fixed second pass of
# before; stopping once the next crop would move < 1 / 2 / 5 % of the roi side, at most 6 passes:
# 4.27 / 4.26 / 4.41 % at 2.85 / 2.35 / 2.12 passes per face on average; at most 4 passes: 4.35 %.
# A face framed badly by the detector (a box on part of the face) takes several passes to settle.
REFINE_MAX_PASSES = 6
REFINE_TOLERANCE = 0.02
# Shift averaging (Reconstructor.average_shifted_crops): each face's final map is averaged, in image
# px, with the maps of its crop moved by ±SHIFT_FRACTION of the side in x and in y (5 crops). On
# ../shared/data/aflw2000_dev with the run-11 model (roi boxes, flip averaging, landmark model):
# 3.89 → 3.85 % balanced 2D NME; ±3 % shifts plus 0.95 / 1.05 scales (7 crops) 3.85, scales alone 3.86.
SHIFT_FRACTION = 0.03
# Restarts (Reconstructor.locate): a detector box on part of a face (an eye, the lower half, the
# ear side: the profile cascade's usual misses) gives a crop that refines slowly or settles on the
# part. When a face's settled crop disagrees with its mirror image by more than RESTART_DISAGREEMENT
# (engine.verify's measure; strict detections on the face: median 1.6, p90 2.6 %), refinement runs
# again from squares RESTART_SCALES × the detector's roi around its centre, and the start whose
# settled crop agrees best with its mirror wins. On ../shared/data/aflw2000_dev with run 12's model
# (the 820 photos the strict cascades find, one refinement per start, no shift averaging): balanced
# 2D NME 4.58 → 3.99 % (bins 2.83 / 3.50 / 7.41 → 2.80 / 3.51 / 5.64; faces > 10 %: 6 → 3), restarts
# on 5 % of the faces; thresholds 2 / 3 / 4 %: 4.00 / 3.99 / 3.98; always picking the best of the
# three starts: 4.01; the best start in hindsight: 3.90. The engine's full detector path (fallback,
# refinement until settled, shift averaging), `evaluate --detector`: run 12 4.14 → 3.81 % (988 faces;
# bins 2.82 / 3.63 / 5.97 → 2.80 / 3.63 / 5.00), run 11 3.94 → 3.95 %. Chosen on that dev set.
# A restart replaces the first crop only when it passes the threshold itself (since run 22): a
# larger start can settle on a crop about twice the face (a masked face with feathers and hair
# read as a bigger one) that is less doubtful than the first crop yet still doubtful; taking it
# cost run 22 36.7 % NME on one dev photo. Run 22, `--detector`: 3.66 → 3.60 % (986 faces; every
# other face within ±1.2 %), also chosen on the dev set.
# A restart within engine.verify's no-face bar (MAX_FLIP_DISAGREEMENT, 5 %) also wins when it
# disagrees with its mirror less than 1 / RESTART_RATIO as much as the first crop (since 2026-12-06):
# a first crop that never settled, 30 % off its mirror, lost to a settled restart at 3.1 % (image03860,
# 75 % NME against 3.2 %). Logged restart decisions on the dev set (every doubtful face, every
# candidate's NME): that is the only face the rule changes for run 22 and for run 23 re-trained;
# it was counted as missed before, so `--detector` finds one face more (run 22 here: 988 → 989 faces,
# 3.590 % either way); a first crop just above 5 % that was right (image04356, a
# restart below 5 % that was not, in an earlier training of run 23) stays, where "restart < 5 % <
# first" alone had taken the restart. Chosen on the dev set.
RESTART_DISAGREEMENT = 3.0
RESTART_RATIO = 2.0
RESTART_SCALES = (1.5, 2.2)
FALLBACK_MAX_BOXES = 8  # fallback boxes (relaxed cascades, close-ups) checked per photo, largest first


def doubtful_faces(disagreement: np.ndarray) -> list[int]:
    """Indices of the faces whose settled crops disagree with their mirror images (percent, (F,)) by
    more than :data:`RESTART_DISAGREEMENT`: those restarted, then searched turned."""
    return [i for i, d in enumerate(disagreement) if d > RESTART_DISAGREEMENT]


def restart_wins(new: float, first: float) -> bool:
    """Does another crop of a doubtful face (a restart, or the face found in the photo turned) that
    disagrees with its mirror by ``new`` percent replace the settled crop at ``first`` percent? When
    it is confident (under :data:`RESTART_DISAGREEMENT`), not merely less doubtful; or when it passes
    engine.verify's no-face bar (:data:`MAX_FLIP_DISAGREEMENT`) and the first crop was far off
    (:data:`RESTART_RATIO` times its disagreement)."""
    return new < RESTART_DISAGREEMENT or (new < MAX_FLIP_DISAGREEMENT and RESTART_RATIO * new < first)


def pick_device(device: str | None) -> torch.device:
    """ "auto" → cuda, else mps, else cpu; an explicit name is checked for availability."""
    name = (device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU (is this a CPU build of torch?)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but Metal is not available here")
    return torch.device(name)


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it fast (CPU with AMX, CUDA), else full precision."""
    if device.type == "cpu":
        is_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return torch.bfloat16 if (is_amx is not None and is_amx()) else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds spent per stage of the last call (for ``python -m engine bench``)."""

    decode: float = 0.0
    detect: float = 0.0
    crop: float = 0.0
    network: float = 0.0
    geometry: float = 0.0
    texture: float = 0.0


class Reconstructor:
    """Callable: photo → faces. Keeps the network loaded; reuse one instance for many photos.

    ``refine``: the landmark-cropped refinement passes (see :meth:`predict`). ``flip_average``: also
    run each crop mirrored and average the two maps (twice the network time; our default model gains ≈0.2 %
    balanced NME); None takes the bundle's own setting (bundle.json ``inference.flip_average``).
    ``shift_average``: also average each face's final map with those of its crop shifted by
    :data:`SHIFT_FRACTION` of the side left, right, up and down (four more crops per face, after the
    refinement has settled); None takes the bundle's ``inference.shift_average``.
    ``crop_zoom``: how much tighter than the roi the network's crop is (engine.crop); None takes the
    bundle's ``inference.crop_zoom`` (1 when absent). ``fallback_detector``: asked when ``detector``
    finds no face, its boxes kept only when the network confirms them (engine.verify); by default
    the relaxed OpenCV cascades and the close-up boxes (engine.detect.default_fallback_detector) when
    ``detector`` is the default one, else none. Its check needs the refinement: with
    ``refine=False`` the fallback confirms no face. ``fit_landmarks``: fit the read-out landmarks
    to the bundle's 68-landmark shape model (engine.shape_model) when it has one; False keeps the
    network's read-out as it is. ``turn_search``: when a photo shows no face, or a face whose crop
    stays doubtful, search it again turned a quarter turn each way (a face lying on its side;
    :meth:`locate`); False skips that (a photo without a face then costs one search instead of three).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        *,
        device: str | None = "cpu",
        detector: FaceDetector | None = None,
        fallback_detector: FaceDetector | None = None,
        refine: bool = True,
        flip_average: bool | None = None,
        shift_average: bool | None = None,
        crop_zoom: float | None = None,
        fit_landmarks: bool = True,
        turn_search: bool = True,
    ) -> None:
        self.bundle = bundle
        self.device = pick_device(device)
        self.model = bundle.build_model(self.device)
        self.layout = bundle.layout
        self.readout = Readout.build(self.layout, bundle.input_size)
        self.uv = mesh_uv(self.layout)
        if detector is None:
            detector = get_detector("opencv")
            if fallback_detector is None:
                fallback_detector = default_fallback_detector()
        self.detector, self.fallback_detector = detector, fallback_detector
        self.refine = refine
        if flip_average and not self.layout.mirrors_by_columns:
            raise ValueError(
                f"flip averaging needs a layout that mirrors by columns; {self.layout.layout_id!r} does not"
            )
        self.flip_average = bundle.flip_average if flip_average is None else flip_average
        self.shift_average = bundle.shift_average if shift_average is None else shift_average
        self.crop_zoom = bundle.crop_zoom if crop_zoom is None else float(crop_zoom)
        if not self.crop_zoom > 0:
            raise ValueError(f"crop zoom must be positive, got {crop_zoom}")
        self.landmark_model = bundle.landmark_model if fit_landmarks else None
        self.turn_search = turn_search
        self.amp_dtype = _autocast_dtype(self.device)
        self.last_times = StageTimes()
        self._crop_seconds = 0.0  # accumulated by run_network, reported apart from the network
        self._detect_seconds = 0.0  # accumulated by locate

    @classmethod
    def from_bundle(cls, path: str | Path | None = None, *, device: str | None = "cpu", **options) -> Reconstructor:
        """Load a bundle (default: the shipped model) and build the reconstructor."""
        return cls(load_bundle(path if path is not None else default_bundle_path()), device=device, **options)

    # -- network ----------------------------------------------------------------------------------
    def predict_maps(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 RGB crops → (B, S, S, 3) float32 position maps in crop px (averaged with
        the mirrored crops' when ``flip_average``)."""
        return predict_position_maps(self.model, crops, amp_dtype=self.amp_dtype, flip_average=self.flip_average)

    def run_network(self, image: np.ndarray, rois: list[BoundingBox]) -> tuple[np.ndarray, list[CropTransform]]:
        """One pass: crop every roi of the RGB ``image`` (tightened by ``crop_zoom``) and predict
        (F, S, S, 3) maps (crop px)."""
        s = self.bundle.input_size
        t0 = time.perf_counter()
        crops, transforms = zip(*(crop_image(image, roi, s, self.crop_zoom) for roi in rois))
        self._crop_seconds += time.perf_counter() - t0
        return self.predict_maps(np.stack(crops)), list(transforms)

    def predict(
        self, image: np.ndarray, rois: list[BoundingBox]
    ) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox]]:
        """Network passes for crop rois, with the landmark refinement passes when enabled.

        Refinement re-crops each face on its last pass's landmarks: always once (a detector box is
        framed differently from the training crops), then again while the next crop would move by
        :data:`REFINE_TOLERANCE` or more, up to :data:`REFINE_MAX_PASSES` passes in all; faces that
        have settled are not run again. A face still drifting at the limit keeps the crop of the pass
        whose next crop would have moved least (its steadiest) instead of the last one, where the
        drift has carried it furthest (image01662, a profile: 6 passes, the last crop 1.3 × the
        protocol's roi). Run 22, ``evaluate --detector``: 3.58 → 3.57 % (988 faces; 3 changed,
        image01662 10.2 → 7.1 %); chosen on the dev set. Returns the final maps (F, S, S, 3) in crop px (with
        ``shift_average``, averaged with shifted crops': :meth:`average_shifted_crops`), their crop
        transforms and final rois.
        """
        maps, transforms, rois, _ = self._refine(image, rois)
        return self.average_shifted_crops(image, maps, transforms), transforms, rois

    def average_shifted_crops(self, image: np.ndarray, maps: np.ndarray, transforms: list[CropTransform]) -> np.ndarray:
        """With ``shift_average``: each (S, S, 3) map (crop px of its transform) averaged in image px
        with the maps of the same crop moved by ±:data:`SHIFT_FRACTION` of its side in x and in y,
        returned in the original crop's px; without, ``maps`` as they are."""
        if not self.shift_average or len(maps) == 0:
            return maps
        views = self.shifted_views(image, maps, transforms)
        return np.stack([t.to_crop(v.mean(axis=0)) for t, v in zip(transforms, views)]).astype(maps.dtype)

    def shifted_views(self, image: np.ndarray, maps: np.ndarray, transforms: list[CropTransform]) -> np.ndarray:
        """(F, 5, S, S, 3) float64 image px: each face's map, then those of its crop moved by
        (+d, 0), (−d, 0), (0, +d), (0, −d) of its side (d = :data:`SHIFT_FRACTION`), each in image px."""
        d = SHIFT_FRACTION
        shifts = ((d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d))
        rois = []  # the rois whose crops (roi side / crop_zoom) are each face's crop, moved
        for t in transforms:
            side = t.size / t.scale
            half = side * self.crop_zoom / 2
            cx, cy = t.left + side / 2, t.top + side / 2
            for dx, dy in shifts:
                x, y = cx + dx * side, cy + dy * side
                rois.append(BoundingBox(x - half, y - half, x + half, y + half))
        shifted, moved = self.run_network(image, rois)
        views = []
        for i, t in enumerate(transforms):
            face = [t.to_image(maps[i])]
            face += [moved[j].to_image(shifted[j]) for j in range(i * len(shifts), (i + 1) * len(shifts))]
            views.append(np.stack(face))
        return np.stack(views)

    def _refine(
        self, image: np.ndarray, rois: list[BoundingBox]
    ) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox], list[bool]]:
        """:meth:`predict`, also saying per face whether its crop settled (always False without
        refinement, which cannot tell)."""
        first_maps, first_transforms = self.run_network(image, rois)
        maps, transforms, rois = list(first_maps), list(first_transforms), list(rois)
        settled = [False] * len(rois)
        pending = list(range(len(rois))) if self.refine else []
        steadiest: dict[int, tuple[float, np.ndarray, CropTransform, BoundingBox]] = {}
        for n_pass in range(2, REFINE_MAX_PASSES + 2):  # the last round only checks the final crops
            nxt = {i: self._landmark_roi(maps[i], transforms[i]) for i in pending}
            if n_pass > 2:
                for i in pending:
                    change = roi_change(rois[i], nxt[i])
                    settled[i] = change < REFINE_TOLERANCE
                    if i not in steadiest or change < steadiest[i][0]:
                        steadiest[i] = (change, maps[i], transforms[i], rois[i])
                pending = [i for i in pending if not settled[i]]
            if not pending or n_pass > REFINE_MAX_PASSES:
                break
            new_maps, new_transforms = self.run_network(image, [nxt[i] for i in pending])
            for i, m, t in zip(pending, new_maps, new_transforms):
                maps[i], transforms[i], rois[i] = m, t, nxt[i]
        for i in pending:  # still drifting at the pass limit: keep its steadiest crop, not the last one
            _, maps[i], transforms[i], rois[i] = steadiest[i]
        return np.stack(maps), transforms, rois, settled

    def _landmark_roi(self, out_map: np.ndarray, transform: CropTransform) -> BoundingBox:
        """The crop roi (image px) around the 68 landmarks of a (S, S, 3) map in crop px: the points
        the engine reports (:meth:`landmarks`, fitted to the shape model when the bundle has one),
        whose box is less noisy than the raw read-out's. Run 22, `evaluate --detector`: 3.60 → 3.58 %
        on the same 986 faces (every bin a little), 988 faces found instead of 986; chosen on the
        dev set."""
        return roi_from_landmarks(self.landmarks(out_map, transform)[:, :2])

    def landmarks(self, out_map: np.ndarray, transform: CropTransform | TurnedCrop) -> np.ndarray:
        """(68, 3) float64 landmarks in image px of a (S, S, 3) map in crop px: the read-out, fitted
        to the landmark shape model when there is one (with the map points it reads from the same map,
        if it has any; fitted in crop px, then moved to the image)."""
        points = self.readout.keypoints(out_map)
        if self.landmark_model is not None:
            points = self.landmark_model.fit(points, out_map)
        return transform.to_image(points)

    # -- faces in a photo ---------------------------------------------------------------------------
    def locate(
        self, rgb: np.ndarray, *, boxes: list[BoundingBox] | None = None, all_faces: bool = True
    ) -> tuple[np.ndarray, list[CropTransform | TurnedCrop], list[BoundingBox]]:
        """Find the faces of an RGB photo and run the network on them: the final maps (F, S, S, 3)
        in crop px, their crop transforms and rois (image px), largest detection first; F = 0 when
        there is no face. Each box is refined, restarted from larger crops when its settled crop is
        doubtful (:meth:`_predict_restarting`). ``boxes`` (face boxes) replace detection, and no
        fallback or turn is tried. With ``turn_search``, the photo is also searched turned a quarter
        turn each way (engine.turns) when it shows no face upright, or when a face's crop stays
        doubtful after its restarts (:meth:`_turn_search`); faces found turned come back with
        :class:`engine.turns.TurnedCrop` transforms and rois in the photo's own frame."""
        maps, transforms, rois, disagreement = self._locate_upright(rgb, boxes=boxes, all_faces=all_faces)
        if boxes is not None or not self.turn_search:
            return maps, transforms, rois
        return self._turn_search(rgb, (maps, list(transforms), rois, disagreement), all_faces=all_faces)

    def _turn_search(
        self,
        rgb: np.ndarray,
        upright: tuple[np.ndarray, list[CropTransform], list[BoundingBox], np.ndarray | None],
        *,
        all_faces: bool,
    ) -> tuple[np.ndarray, list[CropTransform | TurnedCrop], list[BoundingBox]]:
        """The faces of :meth:`locate`, with the quarter turns' faces where the photo needs them.

        * No face upright: the photo turned each way is searched, and the faces the network confirms
          (their crops agree with their mirror images within :data:`engine.verify.MAX_FLIP_DISAGREEMENT`)
          of the turn whose best face agrees best are kept. A face upside down in a turn can still
          draw a cascade box that passes that bar: AFLW2000-3D image02214 (a face lying on its side)
          reads 3.2 % turned one way (74 % NME with run 22) and 0.9 % the other (1.8 % NME).
        * A face whose settled crop stays doubtful (over :data:`RESTART_DISAGREEMENT` after its
          restarts): a face found turned on the same spot (overlap over engine.detect.NMS_OVERLAP)
          replaces it by the restarts' rule (:func:`restart_wins`). A face rolled far can draw a
          cascade box upright that is not it, or only part of it; only photos that keep a doubtful
          face pay for the two turned searches. Run 22, `evaluate --detector`: 3.590 % on 989 faces
          → 3.553 % on 990; the faces changed are all rolled 50–90° (Pose_Para): image04024 found (15.8 % upright,
          4.2 % turned: 4.6 % NME), image00602 7.6 → 3.9 %, image02773 6.0 → 7.8 %; with the first
          rule, image02214 74 → 1.8 %. Chosen on the dev set.
        """
        maps, transforms, rois, disagreement = upright
        doubtful = [] if disagreement is None else doubtful_faces(disagreement)
        if rois and not doubtful:
            return maps, transforms, rois
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        turns = []  # per turn: its faces' maps, transforms, rois (photo frame) and disagreement
        for k in QUARTER_TURNS:
            turned = turn_image(rgb, k)
            t_maps, t_transforms, t_rois, t_disagreement = self._locate_upright(turned, boxes=None, all_faces=all_faces)
            if t_rois and t_disagreement is None:  # no refinement: the mirror check alone
                t_disagreement = self.mirror_disagreement(turned, t_rois)
            turns.append(
                (
                    t_maps,
                    [TurnedCrop(t, k, hw) for t in t_transforms],
                    [box_from_turned(r, k, hw) for r in t_rois],
                    t_disagreement,
                )
            )
        if not rois:
            found = [t for t in turns if t[2]]  # each (maps, transforms, rois, disagreement)
            if not found or min(t[3].min() for t in found) >= MAX_FLIP_DISAGREEMENT:
                return maps, transforms, rois
            t_maps, t_transforms, t_rois, t_disagreement = min(found, key=lambda t: t[3].min())
            keep = np.flatnonzero(t_disagreement < MAX_FLIP_DISAGREEMENT)
            return t_maps[keep], [t_transforms[i] for i in keep], [t_rois[i] for i in keep]
        maps, transforms, rois = maps.copy(), list(transforms), list(rois)
        for i in doubtful:
            same_spot = [
                (float(t_disagreement[j]), t_maps[j], t_transforms[j], t_rois[j])
                for t_maps, t_transforms, t_rois, t_disagreement in turns
                for j in range(len(t_rois))
                if overlap_of_smaller(t_rois[j], rois[i]) > NMS_OVERLAP
            ]
            if same_spot:
                d, m, t, r = min(same_spot, key=lambda c: c[0])
                if restart_wins(d, float(disagreement[i])):
                    maps[i], transforms[i], rois[i] = m, t, r
        keep = keep_distinct(rois)  # two doubtful boxes of one face lying down found it once
        return maps[keep], [transforms[i] for i in keep], [rois[i] for i in keep]

    def _locate_upright(
        self, rgb: np.ndarray, *, boxes: list[BoundingBox] | None, all_faces: bool
    ) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox], np.ndarray | None]:
        """:meth:`locate` in the photo as it is (no quarter turns), also giving each face's mirror
        disagreement (percent, engine.verify) at its settled crop; None without refinement (the
        faces are not checked)."""
        t0 = time.perf_counter()
        if boxes is not None:
            rois = [roi_from_detection(b, "frontal") for b in boxes]
        else:
            rois = [roi_from_detection(b) for b in self.detector(rgb)]
        rois = [r for r in rois if max(r.width, r.height) >= MIN_FACE_PX]
        self._detect_seconds += time.perf_counter() - t0
        if rois:
            return self._predict_restarting(rgb, rois[:1] if not all_faces else rois)
        if boxes is None and self.fallback_detector is not None:
            return self._fallback(rgb, all_faces=all_faces)
        return self._no_faces()

    def _predict_restarting(
        self, image: np.ndarray, rois: list[BoundingBox]
    ) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox], np.ndarray | None]:
        """:meth:`predict` for detector rois, with restarts: a face whose settled crop disagrees with
        its mirror image by more than :data:`RESTART_DISAGREEMENT` is refined again from squares
        :data:`RESTART_SCALES` × its roi (same centre), and the restart that agrees best with its
        mirror replaces it when that agreement is within :data:`RESTART_DISAGREEMENT`, or within
        engine.verify's :data:`MAX_FLIP_DISAGREEMENT` and :data:`RESTART_RATIO` times better than the
        first crop's (otherwise the first crop stays; :func:`restart_wins`). Faces that converged onto
        one face count once (the larger detection's). Also returns each face's mirror disagreement at
        its final crop (None without refinement, which checks nothing)."""
        maps, transforms, final, _ = self._refine(image, rois)
        disagreement = None
        if self.refine:
            maps, transforms, final, disagreement = self._restart_doubtful(image, rois, maps, transforms, final)
            keep = keep_distinct(final)
            maps, transforms, final = maps[keep], [transforms[i] for i in keep], [final[i] for i in keep]
            disagreement = disagreement[keep]
        return self.average_shifted_crops(image, maps, transforms), transforms, final, disagreement

    def _restart_doubtful(
        self,
        image: np.ndarray,
        starts: list[BoundingBox],
        maps: np.ndarray,
        transforms: list[CropTransform],
        rois: list[BoundingBox],
    ) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox], np.ndarray]:
        """The refined faces (``maps``, ``transforms``, final ``rois``) of the first crops ``starts``,
        each replaced by its best restart where it is doubtful (see :meth:`_predict_restarting`), and
        their mirror disagreements (F,)."""
        disagreement = self.mirror_disagreement(image, rois)
        doubtful = doubtful_faces(disagreement)
        if not doubtful:
            return maps, transforms, rois, disagreement
        n = len(RESTART_SCALES)
        again = [scaled_roi(starts[i], factor) for i in doubtful for factor in RESTART_SCALES]
        new_maps, new_transforms, new_rois, _ = self._refine(image, again)
        new_disagreement = self.mirror_disagreement(image, new_rois)
        maps, transforms, rois, disagreement = maps.copy(), list(transforms), list(rois), disagreement.copy()
        for j, i in enumerate(doubtful):
            best = j * n + int(np.argmin(new_disagreement[j * n : (j + 1) * n]))
            if restart_wins(float(new_disagreement[best]), float(disagreement[i])):
                maps[i], transforms[i], rois[i] = new_maps[best], new_transforms[best], new_rois[best]
                disagreement[i] = new_disagreement[best]
        return maps, transforms, rois, disagreement

    def mirror_disagreement(self, image: np.ndarray, rois: list[BoundingBox]) -> np.ndarray:
        """(F,) :func:`engine.verify.flip_disagreement` (percent) of the crops of ``rois`` (image px)."""
        s = self.bundle.input_size
        crops = np.stack([crop_image(image, r, s, self.crop_zoom)[0] for r in rois])
        return flip_disagreement(self.model, crops, self.readout, amp_dtype=self.amp_dtype)

    def _fallback(
        self, rgb: np.ndarray, *, all_faces: bool
    ) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox], np.ndarray]:
        """Faces from the fallback detector that the network confirms (engine.verify): the crop
        settled and the mirrored crop agrees; boxes that converged onto the same face count once.
        Also returns their mirror disagreements."""
        t0 = time.perf_counter()
        rois = [roi_from_detection(b) for b in self.fallback_detector(rgb)]
        rois = [r for r in rois if max(r.width, r.height) >= MIN_FACE_PX][:FALLBACK_MAX_BOXES]
        self._detect_seconds += time.perf_counter() - t0
        if not rois:
            return self._no_faces()
        maps, transforms, rois, settled = self._refine(rgb, rois)
        candidates = [i for i in range(len(rois)) if settled[i]]  # a drifting crop is no face
        if not candidates:
            return self._no_faces()
        disagreement = dict(zip(candidates, self.mirror_disagreement(rgb, [rois[i] for i in candidates])))
        confirmed = sorted(  # most self-consistent first
            (i for i in candidates if disagreement[i] < MAX_FLIP_DISAGREEMENT), key=lambda i: disagreement[i]
        )
        keep = [confirmed[j] for j in keep_distinct([rois[i] for i in confirmed])]
        keep.sort(key=lambda i: -rois[i].area)
        keep = keep[:1] if not all_faces else keep
        if not keep:
            return self._no_faces()
        kept_transforms = [transforms[i] for i in keep]
        return (
            self.average_shifted_crops(rgb, maps[keep], kept_transforms),
            kept_transforms,
            [rois[i] for i in keep],
            np.array([disagreement[i] for i in keep]),
        )

    def _no_faces(self) -> tuple[np.ndarray, list[CropTransform], list[BoundingBox], np.ndarray]:
        s = self.bundle.input_size
        return np.zeros((0, s, s, 3), np.float32), [], [], np.zeros(0)

    # -- full reconstruction ----------------------------------------------------------------------
    def __call__(
        self,
        image: str | Path | np.ndarray,
        *,
        boxes: list[BoundingBox] | None = None,
        all_faces: bool = True,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
        symmetric_fill: bool = False,
    ) -> list[FaceReconstruction]:
        """Reconstruct the faces in ``image`` (path or array). ``boxes`` (face boxes, image px) skip
        detection; ``all_faces=False`` keeps the largest face only. No face → ``[]``."""
        t0 = time.perf_counter()
        rgb = load_image(image)
        t1 = time.perf_counter()
        self._crop_seconds = self._detect_seconds = 0.0
        maps, transforms, rois = self.locate(rgb, boxes=boxes, all_faces=all_faces)
        t3 = time.perf_counter()
        detect_ms, network_ms = self._detect_seconds * 1e3, (t3 - t1 - self._detect_seconds) * 1e3
        if not rois:
            self.last_times = StageTimes(decode=(t1 - t0) * 1e3, detect=detect_ms, network=network_ms)
            return []
        faces_out, t_tex = [], 0.0
        for roi, m, t in zip(rois, maps, transforms):
            recon, dt = self._finish(rgb, roi, m, t, texture_size=texture_size, symmetric_fill=symmetric_fill)
            faces_out.append(recon)
            t_tex += dt
        t4 = time.perf_counter()
        self.last_times = StageTimes(
            decode=(t1 - t0) * 1e3,
            detect=detect_ms,
            crop=0.0,
            network=network_ms,
            geometry=(t4 - t3 - t_tex) * 1e3,
            texture=t_tex * 1e3,
        )
        return faces_out

    def _finish(
        self,
        rgb: np.ndarray,
        roi: BoundingBox,
        out_map: np.ndarray,
        transform: CropTransform | TurnedCrop,
        *,
        texture_size: int,
        symmetric_fill: bool,
    ) -> tuple[FaceReconstruction, float]:
        vertices = transform.to_image(self.readout.vertices(out_map)).astype(np.float32)
        landmarks = self.landmarks(out_map, transform).astype(np.float32)
        z0 = vertices[:, 2].min()
        vertices[:, 2] -= z0
        landmarks[:, 2] -= z0
        tris = self.layout.triangles
        zbuf = ZBuffer.from_mesh(vertices, tris)
        visible = vertex_visibility(vertices, tris, zbuffer=zbuf)
        pose = estimate_pose(vertices, self.layout)
        position_map = map_from_vertices(vertices, self.layout)
        t = time.perf_counter()
        texture, tex_mask = extract_texture(
            rgb, position_map, self.layout, size=texture_size, symmetric_fill=symmetric_fill, visibility=visible
        )
        dt = time.perf_counter() - t
        recon = FaceReconstruction(
            box=roi,
            image_size=(int(rgb.shape[0]), int(rgb.shape[1])),
            layout_id=self.layout.layout_id,
            position_map=position_map,
            vertices=vertices,
            triangles=tris,
            uv=self.uv,
            vertex_colors=vertex_colors(rgb, vertices),
            vertex_visibility=visible,
            landmarks_3d=landmarks,
            landmark_visibility=landmark_visibility(landmarks, vertices, tris, zbuffer=zbuf),
            pose=pose,
            frontal_vertices=frontalize(vertices, pose).astype(np.float32),
            texture=texture,
            texture_mask=tex_mask,
        )
        return recon, dt

"""``python -m training evaluate DIR``: AFLW2000-3D figures for a bundle, as the papers report them.

Two cropping modes: the protocol's roi boxes (``roi_box.npy``), or, with ``--detector``, what a user
gets from a plain photo — the engine's face search (engine.face_search): our detector (and its network-checked
fallback), the roi conversion and the landmark refinement passes. The face scored is the one on the
annotated face (``metrics.annotated_face``: final roi centre inside its 68-point box, best overlap);
AFLW2000 photos often show other people too, whose faces the engine reconstructs as well but who
have no ground truth. Images without a face found on the annotated one count as misses and are left
out of the NME (the miss count is printed).
In both, the network's crop is the roi tightened by the bundle's ``inference.crop_zoom`` (engine.crop),
exactly as the engine runs it; ``--crop-zoom 1`` crops the protocol's roi as it is.

Pose MAE compares each face's head rotation with the ``Pose_Para`` of its ``.mat`` (pitch, yaw, roll
in radians), read in that file's own Euler convention (``metrics.pose_para_angles``), over the
photos whose three angles lie within ±99° (``metrics.POSE_PROTOCOL_MAX_DEG``, as head-pose papers
report AFLW2000; ``pose_n`` in the result counts them).

The result also lists every image (``per_image``: name, |yaw|, NME 2D / 3D, ``null`` for a miss), so
two runs can be compared on the faces both found (``python -m training.compare_evals``): with
``--detector`` two models rarely find the same faces, and a face more or less moves the figure.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.io as sio

from engine.api import Reconstructor
from engine.image_io import load_image
from engine.options import ReconstructOptions
from engine.pose import estimate_pose
from engine.types import BoundingBox

from .dev_split import DevAnnotations
from .metrics import POSE_PROTOCOL_MAX_DEG, angle_error, annotated_face, binned, nme_per_image, pose_para_angles


def _gt_pose(folder: Path, names: list[str]) -> np.ndarray | None:
    """(N, 3) Pose_Para (pitch, yaw, roll) degrees from the .mat files, or None when they are absent."""
    out = []
    for n in names:
        mat = folder / (Path(n).stem + ".mat")
        if not mat.is_file():
            return None
        out.append(np.degrees(sio.loadmat(mat)["Pose_Para"].ravel()[:3]))
    return np.asarray(out)


def evaluate_folder(
    folder: str | Path,
    *,
    bundle: str | Path | None = None,
    use_detector: bool = False,
    device: str = "cpu",
    flip_average: bool | None = None,
    shift_average: bool | None = None,
    crop_zoom: float | None = None,
    fit_landmarks: bool = True,
    half: str = "all",
) -> dict:
    """The figures of the module's text on ``half`` of the folder (training.dev_split: all, tuning, report)."""
    folder = Path(folder)
    for needed in ("list.txt", "pts68.npy", "roi_box.npy", "yaw.npy"):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"{folder} is not an AFLW2000-3D style folder: {needed} missing")
    dev = DevAnnotations.load(folder, half)
    names, gt, rois, yaw = dev.names, dev.gt, dev.rois, dev.abs_yaw
    options = ReconstructOptions(
        device=device,
        flip_average=flip_average,
        shift_average=shift_average,
        crop_zoom=crop_zoom,
        fit_landmarks=fit_landmarks,
    )
    rec = Reconstructor.from_bundle(bundle, options)
    passes, layout = rec.passes, rec.layout
    preds, poses, found = [], [], []
    t0 = time.perf_counter()
    for i, (name, roi) in enumerate(zip(names, rois)):
        image = load_image(folder / name)
        if use_detector:  # what a user gets: detection (+ checked fallback), refinement passes
            found_faces = rec.search.find(image)
            maps, transforms = found_faces.maps, found_faces.transforms
            face = annotated_face(found_faces.rois, gt[i, :, :2])
            found.append(face is not None)
            if face is None:
                continue
            maps, transforms = maps[face : face + 1], transforms[face : face + 1]
        else:  # the protocol: one pass on the given roi crop (and its shifted crops with shift averaging)
            found.append(True)
            maps, transforms = passes.run_network(image, [BoundingBox(*map(float, roi))])
            maps = passes.average_shifted_crops(image, maps, transforms)
        out_map, t = maps[0], transforms[0]
        preds.append(passes.landmarks(out_map, t))
        poses.append(pose_para_angles(estimate_pose(t.to_image(passes.readout.vertices(out_map)), layout).rotation))
    ms = (time.perf_counter() - t0) * 1e3 / len(names)
    found = np.asarray(found)
    if not preds:
        raise ValueError(f"no face was found on any of the {len(names)} annotated faces in {folder}")
    pred = np.stack(preds)
    nme_2d = nme_per_image(pred, gt[found], dims=2)
    nme_3d = nme_per_image(pred, gt[found], dims=3)
    result = {
        "n": int(found.sum()),
        "missed": int((~found).sum()),
        "nme_2d": binned(nme_2d, yaw[found]),
        "nme_3d": binned(nme_3d, yaw[found]),
        "ms_per_image": ms,
        "flip_average": passes.flip_average,
        "shift_average": passes.shift_average,
        "crop_zoom": passes.crop_zoom,
        "landmark_model": passes.landmark_model is not None,
        "half": half,
    }
    gt_pose = _gt_pose(folder, names)
    if gt_pose is not None:
        gt_pose = gt_pose[found]
        scored = (np.abs(gt_pose) <= POSE_PROTOCOL_MAX_DEG).all(axis=1)
        err = angle_error(np.asarray(poses), gt_pose)[scored]
        result["pose_n"] = int(scored.sum())
        result["pose_mae_deg"] = {
            "yaw": float(err[:, 1].mean()),
            "pitch": float(err[:, 0].mean()),
            "roll": float(err[:, 2].mean()),
        }
    result["per_image"] = _per_image(names, yaw, found, nme_2d, nme_3d)
    return result


def _per_image(names, yaw, found, nme_2d, nme_3d) -> list[dict]:
    """One record per image in list order; a missed face has ``None`` NMEs (JSON null)."""
    scored = iter(zip(nme_2d.tolist(), nme_3d.tolist()))
    records = []
    for name, y, hit in zip(names, yaw.tolist(), found.tolist()):
        n2, n3 = next(scored) if hit else (None, None)
        records.append({"image": name, "abs_yaw": y, "nme_2d": n2, "nme_3d": n3})
    return records


def run_evaluation(folder: str | Path, *, json_out: str | Path | None = None, **options) -> dict:
    """:func:`evaluate_folder` (``options`` are its keywords), printed; written as JSON to ``json_out``."""
    r = evaluate_folder(folder, **options)
    use_detector = options.get("use_detector", False)
    w = sys.stdout.write
    mode = "detector + refinement" if use_detector else "roi boxes"
    mode += ", flip averaging" if r["flip_average"] else ""
    mode += ", shift averaging" if r["shift_average"] else ""
    mode += f", crop zoom {r['crop_zoom']:g}" if r["crop_zoom"] != 1.0 else ""
    mode += ", landmark model" if r["landmark_model"] else ""
    mode += f", {r['half']} half (training.dev_split)" if r["half"] != "all" else ""
    w(
        f"{r['n']} images ({mode}), {r['missed']} missed by the detector\n"
        if use_detector
        else f"{r['n']} images ({mode})\n"
    )
    for key, label in (("nme_2d", "NME 2D"), ("nme_3d", "NME 3D")):
        v = r[key]
        w(
            f"{label} %: [0,30] {v['0-30']:.2f}  (30,60] {v['30-60']:.2f}  (60,90] {v['60-90']:.2f}  "
            f"balanced {v['balanced']:.2f}  mean {v['mean']:.2f}\n"
        )
    if "pose_mae_deg" in r:
        p = r["pose_mae_deg"]
        w(
            f"pose MAE (deg, {r['pose_n']} faces within ±{POSE_PROTOCOL_MAX_DEG:g}°): "
            f"yaw {p['yaw']:.2f}  pitch {p['pitch']:.2f}  roll {p['roll']:.2f}\n"
        )
    w(f"{r['ms_per_image']:.1f} ms per image\n")
    if json_out:
        Path(json_out).write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    w(f"balanced NME 2D: {r['nme_2d']['balanced']:.2f}%\n")
    return r

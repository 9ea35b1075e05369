"""``python -m training evaluate``: the AFLW2000-3D figures on a synthetic dev folder, with the
deterministic mean-face bundle."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from synthetic import gradient_photo

from training.cli import main


def _dev_folder(path, shift_px: float):
    """Three photos (one per yaw bin) whose ground truth is the mean-face bundle's exact answer on the
    roi crop, except that the (30, 60] image's points are moved ``shift_px`` to the right."""
    from mean_face import MEAN_FACE_INPUT, mean_face_keypoints

    from engine.crop import CropTransform
    from engine.types import BoundingBox

    path.mkdir()
    kp_crop = mean_face_keypoints()
    rois = np.array([[220, 140, 420, 340], [200, 120, 440, 360], [240, 150, 400, 310]], np.float64)
    gt = np.stack([CropTransform.from_roi(BoundingBox(*r), MEAN_FACE_INPUT).to_image(kp_crop) for r in rois])
    gt[1, :, 0] += shift_px
    names = []
    for i in range(len(rois)):
        names.append(f"image{i:05d}.jpg")
        cv2.imwrite(str(path / names[-1]), gradient_photo())
    (path / "list.txt").write_text("\n".join(names) + "\n")
    np.save(path / "pts68.npy", gt.transpose(0, 2, 1))
    np.save(path / "roi_box.npy", rois)
    np.save(path / "yaw.npy", np.array([10.0, -45.0, 75.0]))
    return gt


def test_evaluate_prints_and_writes_the_documented_figures(mean_face_bundle, tmp_path, capsys):
    shift = 2.0
    gt = _dev_folder(tmp_path / "dev", shift)
    out = tmp_path / "nme.json"
    code = main(["evaluate", str(tmp_path / "dev"), "--bundle", str(mean_face_bundle), "--json", str(out)])
    assert code == 0
    r = json.loads(out.read_text())
    box = gt[1, :, :2].max(axis=0) - gt[1, :, :2].min(axis=0)
    expected = shift / np.sqrt(box.prod()) * 100  # percent of √(w·h) of the ground-truth box
    tol = 1e-3  # float32 read-out through crop and image frame, in percent
    assert r["n"] == 3 and r["flip_average"] is False
    for key in ("nme_2d", "nme_3d"):
        assert r[key]["0-30"] < tol and r[key]["60-90"] < tol
        assert r[key]["30-60"] == pytest.approx(expected, abs=tol)
        assert r[key]["balanced"] == pytest.approx(expected / 3, abs=tol)
        assert r[key]["mean"] == pytest.approx(expected / 3, abs=tol)
    assert r["ms_per_image"] > 0 and "pose_mae_deg" not in r  # no .mat files: no pose figures
    assert [p["image"] for p in r["per_image"]] == ["image00000.jpg", "image00001.jpg", "image00002.jpg"]
    assert [p["abs_yaw"] for p in r["per_image"]] == [10.0, 45.0, 75.0]
    assert r["per_image"][1]["nme_2d"] == pytest.approx(expected, abs=tol)
    assert r["per_image"][0]["nme_2d"] < tol and r["per_image"][2]["nme_3d"] < tol
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "3 images (roi boxes)"
    assert lines[-1] == f"balanced NME 2D: {r['nme_2d']['balanced']:.2f}%"


def test_evaluate_scores_pose_para_within_the_protocol_range(mean_face_bundle, tmp_path, capsys):
    """With .mat files, pose MAE is against their Pose_Para, over the photos whose angles lie within
    ±99°: the mean-face bundle's head is unrotated, so each error is the file's own angle."""
    import scipy.io as sio

    _dev_folder(tmp_path / "dev", 0.0)
    pose_para = np.array([[0.1, -0.2, 0.05], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])  # radians; the last: 172° pitch
    for i, angles in enumerate(pose_para):
        sio.savemat(tmp_path / "dev" / f"image{i:05d}.mat", {"Pose_Para": np.r_[angles, 0, 0, 0, 1.0][None]})
    out = tmp_path / "pose.json"
    assert main(["evaluate", str(tmp_path / "dev"), "--bundle", str(mean_face_bundle), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["pose_n"] == 2
    expected = {"pitch": np.degrees(0.1) / 2, "yaw": np.degrees(0.2) / 2, "roll": np.degrees(0.05) / 2}
    for key, value in expected.items():
        assert r["pose_mae_deg"][key] == pytest.approx(value, abs=1e-3), key
    assert "pose MAE (deg, 2 faces within ±99°): yaw 5.73  pitch 2.86  roll 1.43" in capsys.readouterr().out


def test_evaluate_with_flip_averaging_says_so(mean_face_bundle, tmp_path, capsys):
    _dev_folder(tmp_path / "dev", 0.0)
    code = main(["evaluate", str(tmp_path / "dev"), "--bundle", str(mean_face_bundle), "--flip-average"])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[0] == "3 images (roi boxes, flip averaging)"


def test_evaluate_names_a_folder_that_is_not_a_dev_set(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "list.txt missing" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [[], ["--no-landmark-model"]], ids=["fitted", "read-out"])
def test_evaluate_fits_the_bundles_landmark_model_unless_told_not_to(bundle_copy, tmp_path, capsys, flag):
    """A landmark model whose mean is the mean face: the fit of the mean face's own points is exact,
    so the error stays 0 either way; the header and the JSON say which landmarks were scored."""
    from mean_face import mean_face_keypoints

    from engine.bundle import attach_landmark_model
    from engine.shape_model import LandmarkShapeModel

    mean = mean_face_keypoints().astype(np.float64)
    mean -= mean.mean(axis=0)
    modes, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(204, 4)))
    model = LandmarkShapeModel(mean / 50.0, modes.T.reshape(4, 68, 3), np.full(4, 0.1), prior_weight=1e-3)
    attach_landmark_model(bundle_copy, model)
    _dev_folder(tmp_path / "dev", 0.0)
    out = tmp_path / "nme.json"
    assert main(["evaluate", str(tmp_path / "dev"), "--bundle", str(bundle_copy), "--json", str(out), *flag]) == 0
    r = json.loads(out.read_text())
    assert r["landmark_model"] == (not flag)
    assert r["nme_2d"]["balanced"] < 1e-3  # percent: float32 read-out, as in the test above
    header = capsys.readouterr().out.splitlines()[0]
    assert header == ("3 images (roi boxes)" if flag else "3 images (roi boxes, landmark model)")


def test_evaluate_says_when_no_annotated_face_was_found(mean_face_bundle, tmp_path, capsys):
    """Face-free gradient photos: the detector path finds nothing to score, and says so."""
    _dev_folder(tmp_path / "dev", 0.0)
    assert main(["evaluate", str(tmp_path / "dev"), "--bundle", str(mean_face_bundle), "--detector"]) == 1
    assert "no face was found on any of the 3 annotated faces" in capsys.readouterr().err

"""The command line, called in-process through ``engine.cli.main(argv)``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from synthetic import gradient_photo

from engine.cli import main


@pytest.fixture()
def photos(tmp_path):
    a = tmp_path / "a.png"
    cv2.imwrite(str(a), gradient_photo())
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 127, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [[220, 140, 420, 340], [20, 20, 180, 180]]}))
    return a, blank, boxes


def test_reconstruct_writes_the_documented_files(mean_face_bundle, photos, tmp_path, capsys):
    a, _, boxes = photos
    out = tmp_path / "out"
    code = main(
        [
            "reconstruct",
            str(a),
            "-o",
            str(out),
            "--bundle",
            str(mean_face_bundle),
            "--boxes",
            str(boxes),
            "--texture-size",
            "256",
        ]
    )
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a.landmarks.json", "a.mtl", "a.obj", "a.pose.json", "a_texture.png"]
    lm = json.loads((out / "a.landmarks.json").read_text())
    assert np.asarray(lm["landmarks_3d"]).shape == (68, 3)
    pose = json.loads((out / "a.pose.json").read_text())
    assert {"yaw", "pitch", "roll"} <= set(pose)
    assert "map_Kd a_texture.png" in (out / "a.mtl").read_text()


def test_all_faces_numbers_the_stems(mean_face_bundle, photos, tmp_path):
    a, _, boxes = photos
    out = tmp_path / "out"
    assert (
        main(
            [
                "reconstruct",
                str(a),
                "-o",
                str(out),
                "--bundle",
                str(mean_face_bundle),
                "--boxes",
                str(boxes),
                "--all-faces",
                "--texture-size",
                "256",
                "--extra-formats",
                "ply",
                "npz",
            ]
        )
        == 0
    )
    for k in (1, 2):
        for suffix in (".obj", ".mtl", "_texture.png", ".landmarks.json", ".pose.json", ".ply", ".npz"):
            assert (out / f"a_{k}{suffix}").is_file()


def test_bad_photo_fails_alone_and_others_are_processed(mean_face_bundle, photos, tmp_path, capsys):
    a, _, boxes = photos
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"
    code = main(
        [
            "reconstruct",
            str(missing),
            str(a),
            "-o",
            str(out),
            "--bundle",
            str(mean_face_bundle),
            "--boxes",
            str(boxes),
            "--texture-size",
            "256",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "missing.jpg" in err and "error" in err
    assert (out / "a.obj").is_file()


def test_no_face_exits_zero_with_a_message(mean_face_bundle, photos, tmp_path, capsys):
    _, blank, _ = photos
    out = tmp_path / "out"
    assert main(["reconstruct", str(blank), "-o", str(out), "--bundle", str(mean_face_bundle)]) == 0
    assert "no face found" in capsys.readouterr().err
    assert not any(out.iterdir())


def test_unwritable_output_and_bad_bundle(mean_face_bundle, photos, tmp_path, capsys):
    a, _, _ = photos
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["reconstruct", str(a), "-o", str(a_file / "sub"), "--bundle", str(mean_face_bundle)]) == 1
    assert main(["reconstruct", str(a), "-o", str(tmp_path / "o"), "--bundle", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "nope" in err


def test_texture_size_is_checked(photos, tmp_path, capsys):
    a, _, _ = photos
    assert main(["reconstruct", str(a), "-o", str(tmp_path), "--texture-size", "100"]) == 2
    assert "256..4096" in capsys.readouterr().err


def test_bad_boxes_file(mean_face_bundle, photos, tmp_path, capsys):
    a, _, _ = photos
    bad = tmp_path / "b.json"
    bad.write_text('{"a.png": [[1, 2]]}')
    assert (
        main(["reconstruct", str(a), "-o", str(tmp_path / "o"), "--boxes", str(bad), "--bundle", str(mean_face_bundle)])
        == 1
    )
    assert "bad boxes" in capsys.readouterr().err


def test_asset_options_shape_the_written_files(mean_face_bundle, photos, tmp_path):
    a, _, boxes = photos
    out = tmp_path / "out"
    args = ["reconstruct", str(a), "-o", str(out), "--bundle", str(mean_face_bundle), "--boxes", str(boxes)]
    opts = ["--texture-size", "256", "--topology", "quads", "--quad-cells", "40", "--mouth", "open"]
    assert main([*args, *opts, "--texture-mode", "photo", "--extra-formats", "ply"]) == 0
    faces = [line.split()[1:] for line in (out / "a.obj").read_text().splitlines() if line.startswith("f ")]
    assert faces and all(len(f) == 4 for f in faces)  # all quads
    ply = (out / "a.ply").read_bytes()
    assert b"element face %d" % len(faces) in ply
    png = cv2.imread(str(out / "a_texture.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (256, 256, 4)  # photo mode: the seen mask as alpha
    pose = json.loads((out / "a.pose.json").read_text())
    assert len(pose["head_pivot"]) == 3
    assert main([*args, "--quad-cells", "4"]) == 2
    with pytest.raises(SystemExit):
        main([*args, "--mouth", "auto"])

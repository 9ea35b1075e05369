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


def test_odd_photo_names_give_safe_utf8_files_and_duplicates_get_distinct_stems(mean_face_bundle, tmp_path, capsys):  # noqa: E501
    """José ñ.png (a space, non-ASCII letters), a name with a newline, and two photos called a.png in
    two folders: every face's OBJ, MTL and texture are written, readable and referring to each other."""
    names = [tmp_path / "José ñ.png", tmp_path / "line\nbreak.png", tmp_path / "one" / "a.png"]
    names.append(tmp_path / "two" / "a.png")
    boxes = {}
    for path in names:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(cv2.imencode(".png", gradient_photo())[1].tobytes())  # imwrite cannot take every name
        boxes[path.name] = [[220, 140, 420, 340]]
    box_file = tmp_path / "boxes.json"
    box_file.write_text(json.dumps(boxes))
    out = tmp_path / "out"
    args = [
        "reconstruct",
        *map(str, names),
        "-o",
        str(out),
        "--bundle",
        str(mean_face_bundle),
        "--boxes",
        str(box_file),
    ]
    assert main([*args, "--texture-size", "256"]) == 0
    stems = {p.stem for p in out.glob("*.obj")}
    assert stems == {"José_ñ", "line_break", "a", "a_2"}
    for stem in stems:
        obj = (out / f"{stem}.obj").read_text(encoding="utf-8")
        assert f"mtllib {stem}.mtl" in obj
        assert f"map_Kd {stem}_texture.png" in (out / f"{stem}.mtl").read_text(encoding="utf-8")
        assert (out / f"{stem}_texture.png").is_file()
    assert "written as 'a_2'" in capsys.readouterr().err


def test_a_box_off_the_photo_fails_that_photo_only(mean_face_bundle, photos, tmp_path, capsys):
    a, _, _ = photos
    b = tmp_path / "b.png"
    cv2.imwrite(str(b), gradient_photo())
    boxes = tmp_path / "bad_boxes.json"
    boxes.write_text(json.dumps({"a.png": [[700, 500, 800, 600]], "b.png": [[220, 140, 420, 340]]}))
    out = tmp_path / "out"
    code = main(
        ["reconstruct", str(a), str(b), "-o", str(out), "--bundle", str(mean_face_bundle), "--boxes", str(boxes)]
        + ["--texture-size", "256"]
    )
    assert code == 1 and "outside the 640×480 photo" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.obj")) == ["b.obj"]


def test_sigterm_mid_batch_stops_cleanly_with_every_face_whole(mean_face_bundle, tmp_path):
    """A batch stopped by SIGTERM after its first face: exit 130, no traceback, and every face written
    has all of its files (they are moved into place as a group)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    photos = []
    for k in range(12):
        photos.append(tmp_path / f"p{k:02d}.png")
        cv2.imwrite(str(photos[-1]), gradient_photo())
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({p.name: [[220, 140, 420, 340]] for p in photos}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "engine", "reconstruct", *map(str, photos), "-o", str(out)]
    cmd += ["--bundle", str(mean_face_bundle), "--boxes", str(boxes), "--texture-size", "256"]
    proc = subprocess.Popen(cmd, cwd=repo, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.obj")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err
    objs = sorted(out.glob("*.obj"))
    assert 1 <= len(objs) < len(photos)
    for obj in objs:
        for suffix in (".mtl", "_texture.png", ".landmarks.json", ".pose.json"):
            assert (out / f"{obj.stem}{suffix}").is_file(), (obj.stem, suffix)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(("extra", "settled"), [((), True), (("--no-settle",), False), (("--box-kind", "roi"), False)])
def test_given_boxes_settle_unless_told_not_to_or_given_as_rois(mean_face_bundle, photos, tmp_path, extra, settled):
    from mean_face import MEAN_FACE_INPUT, MEAN_FACE_PX_PER_MM

    from engine.crop import CropTransform
    from engine.detect import roi_from_detection
    from engine.types import BoundingBox

    a, _, boxes = photos
    out = tmp_path / "out"
    args = ["reconstruct", str(a), "-o", str(out), "--bundle", str(mean_face_bundle), "--boxes", str(boxes)]
    assert main([*args, "--texture-size", "256", *extra]) == 0
    scale = json.loads((out / "a.pose.json").read_text())["scale"]  # px per mm: the mean face in its final crop
    given = BoundingBox(220.0, 140.0, 420.0, 340.0)
    crop = given if "roi" in extra else roi_from_detection(given, "frontal")
    unsettled = MEAN_FACE_PX_PER_MM / CropTransform.from_roi(crop, MEAN_FACE_INPUT).scale
    assert (abs(scale / unsettled - 1) > 1e-3) == settled


def test_bench_reports_every_stage_and_both_models_forward(mean_face_bundle, capsys):
    from engine.bench import run_bench

    results = run_bench(bundle=mean_face_bundle, devices=["cpu"], repeats=1, texture_size=256)["cpu"]
    assert set(results) == {"full", "preview", "fast"}  # fast: the shipped fast model beside the given bundle
    for figures in results.values():
        assert {"decode", "detect", "crop", "network", "geometry", "texture", "files", "total"} <= set(figures)
        assert figures["forward"] > 0 and figures["reference"] > 0 and figures["images"] >= 1
    out = capsys.readouterr().out
    assert "forward" in out and "ms/crop" in out and "prnet-blender-fast@" in out

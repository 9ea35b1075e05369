"""Exporters: OBJ/MTL/PNG/PLY/JSON/NPZ contents, frames, winding, and atomic failure behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from arrays import assert_close

from engine import atomic_write
from engine.errors import OutputError
from engine.export import (
    export_face,
    write_mtl,
    write_npz,
    write_obj,
    write_ply,
    write_texture_png,
)
from engine.layout import grid_triangles
from engine.types import BoundingBox, FaceReconstruction, HeadPose

OBJ_POSITION_PX = 1e-4  # px: the OBJ's 4 decimals (rounding 5e-5 plus float32 round-off)
OBJ_UV = 1e-6  # fraction of the UV square: the OBJ's 6 decimals
JSON_PX = 1e-4  # px: JSON values keep 4 decimals


def _recon() -> FaceReconstruction:
    """A 3×3-vertex frontal grid bulging toward the camera, laid out like a position map."""
    mask = np.ones((3, 3), bool)
    rows, cols = np.mgrid[0:3, 0:3]
    z = 5.0 - (rows - 1) ** 2 - (cols - 1) ** 2  # centre nearest the camera
    vertices = np.stack([100 + 10 * cols, 50 + 10 * rows, z], axis=-1).reshape(-1, 3).astype(np.float32)
    uv = np.stack([cols / 2, 1 - rows / 2], axis=-1).reshape(-1, 2).astype(np.float32)  # v up
    texture = np.zeros((4, 4, 3), np.uint8)
    texture[0, 0] = (255, 0, 0)  # top-left texel red
    rng = np.random.default_rng(0)
    pose = HeadPose(
        yaw=10.0, pitch=-5.0, roll=2.5, rotation=np.eye(3), translation=np.array([1.0, 2.0, 3.0]), scale=1.5
    )
    return FaceReconstruction(
        box=BoundingBox(90, 40, 130, 80, 0.9),
        image_size=(120, 160),
        layout_id="test3",
        position_map=vertices.reshape(3, 3, 3),
        vertices=vertices,
        triangles=grid_triangles(mask),
        uv=uv,
        vertex_colors=np.linspace(0, 1, 27, dtype=np.float32).reshape(9, 3),
        vertex_visibility=np.ones(9, bool),
        landmarks_3d=rng.uniform(0, 100, (68, 3)).astype(np.float32),
        landmark_visibility=np.arange(68) % 2 == 0,
        pose=pose,
        frontal_vertices=vertices - vertices.mean(axis=0),
        texture=texture,
        texture_mask=np.ones((4, 4), bool),
        mouth="closed",
        head_pivot=np.array([0.0, 30.0, -60.0], np.float32),
    )


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    v, vt, f, other = [], [], [], []
    for line in path.read_text().splitlines():
        key, *rest = line.split()
        if key == "v":
            v.append([float(x) for x in rest])
        elif key == "vt":
            vt.append([float(x) for x in rest])
        elif key == "f":
            pairs = [tuple(int(i) for i in c.split("/")) for c in rest]
            assert all(a == b for a, b in pairs)  # vertex and texture index agree
            f.append([a for a, _ in pairs])
        else:
            other.append(line)
    return np.array(v), np.array(vt), np.array(f), other


def test_obj_frame_uv_faces_and_winding(tmp_path: Path) -> None:
    recon = _recon()
    path = write_obj(tmp_path / "face.obj", recon)
    v, vt, f, other = _read_obj(path)
    expected = recon.vertices * np.array([1, -1, 1], np.float32)
    assert_close(v, expected, OBJ_POSITION_PX, "OBJ v (y flipped, pixel units kept)")
    assert_close(vt, recon.uv, OBJ_UV, "OBJ vt")
    assert f.min() == 1 and f.max() == len(v)  # 1-based
    np.testing.assert_array_equal(f - 1, recon.triangles)
    assert "mtllib face.mtl" in other and "usemtl face" in other
    a, b, c = (v[f[:, k] - 1] for k in range(3))
    normals = np.cross(b - a, c - a)
    assert (normals[:, 2] > 0).all()  # frontal face: every normal toward the viewer (+z)


def test_meshes_of_one_layout_share_formatted_lines_and_others_get_their_own(tmp_path: Path) -> None:
    from dataclasses import replace

    recon = _recon()
    moved = replace(recon, vertices=recon.vertices + 1.0)  # another face of the same layout
    flipped = replace(recon, triangles=recon.triangles[:, ::-1].copy(), uv=1.0 - recon.uv)  # another mesh kind
    for name, r in (("a", recon), ("b", moved), ("c", flipped), ("d", recon)):
        v, vt, f, _ = _read_obj(write_obj(tmp_path / f"{name}.obj", r))
        assert_close(v, r.vertices * np.array([1, -1, 1], np.float32), OBJ_POSITION_PX, f"OBJ {name} v")
        assert_close(vt, r.uv, OBJ_UV, f"OBJ {name} vt")
        np.testing.assert_array_equal(f - 1, r.triangles)


def test_mtl_points_to_relative_texture(tmp_path: Path) -> None:
    text = write_mtl(tmp_path / "face.mtl", "face_texture.png").read_text()
    assert "newmtl face" in text and "map_Kd face_texture.png" in text.splitlines()
    with pytest.raises(ValueError, match="relative"):
        write_mtl(tmp_path / "x.mtl", str(tmp_path / "abs.png"))


def test_texture_png_is_rgb(tmp_path: Path) -> None:
    path = write_texture_png(tmp_path / "t.png", _recon().texture)
    back = cv2.imread(str(path))[..., ::-1]
    np.testing.assert_array_equal(back, _recon().texture)


def test_ply_binary_payload(tmp_path: Path) -> None:
    recon = _recon()
    data = write_ply(tmp_path / "face.ply", recon).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    assert "element vertex 9" in header and f"element face {len(recon.triangles)}" in header
    vdt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    verts = np.frombuffer(data, vdt, count=9, offset=end)
    assert_close(verts["y"], -recon.vertices[:, 1], 0.0, "PLY y (flipped)")
    assert_close(verts["x"], recon.vertices[:, 0], 0.0, "PLY x")
    np.testing.assert_array_equal(verts["b"], np.rint(recon.vertex_colors[:, 2] * 255))
    fdt = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    faces = np.frombuffer(data, fdt, offset=end + 9 * vdt.itemsize)
    assert (faces["n"] == 3).all()
    np.testing.assert_array_equal(faces["i"], recon.triangles)


def test_export_face_writes_everything(tmp_path: Path) -> None:
    recon = _recon()
    out = tmp_path / "new" / "folder"
    paths = export_face(recon, out, "astro", formats=("obj", "landmarks", "pose", "ply", "npz"))
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "astro.obj",
            "astro.mtl",
            "astro_texture.png",
            "astro.landmarks.json",
            "astro.pose.json",
            "astro.ply",
            "astro.npz",
        ]
    )
    assert sorted(os.listdir(out)) == names  # no temporary files left behind
    lm = json.loads((out / "astro.landmarks.json").read_text())
    assert {"landmarks_3d", "landmarks_2d", "visibility", "names", "frame"} <= lm.keys()
    assert len(lm["landmarks_3d"]) == 68 and len(lm["names"]) == 68 and lm["visibility"][:2] == [True, False]
    assert_close(lm["landmarks_2d"], recon.landmarks_2d, JSON_PX, "landmarks_2d")
    pose = json.loads((out / "astro.pose.json").read_text())
    assert {"yaw", "pitch", "roll", "rotation", "translation", "scale", "convention"} <= pose.keys()
    assert pose["yaw"] == 10.0 and np.shape(pose["rotation"]) == (3, 3)
    with np.load(out / "astro.npz") as z:
        np.testing.assert_array_equal(z["triangles"], recon.triangles)
        np.testing.assert_array_equal(z["texture"], recon.texture)
        assert str(z["layout_id"]) == "test3" and z["box"].shape == (5,)
    assert "map_Kd astro_texture.png" in (out / "astro.mtl").read_text()


def test_default_formats(tmp_path: Path) -> None:
    names = {p.name for p in export_face(_recon(), tmp_path, "a")}
    assert names == {"a.obj", "a.mtl", "a_texture.png", "a.landmarks.json", "a.pose.json"}


def test_folder_under_a_file_raises_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="a_file/sub is not writable"):
        export_face(_recon(), blocker / "sub", "x")  # fails for every user, root included
    assert os.listdir(tmp_path) == ["a_file"]


def test_read_only_folder_raises_and_leaves_nothing(tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        if os.access(readonly, os.W_OK):
            pytest.skip("running as root: permissions do not block writes (covered by the test above)")
        with pytest.raises(OutputError, match="ro is not writable"):
            export_face(_recon(), readonly, "x")
        assert os.listdir(readonly) == []
    finally:
        readonly.chmod(0o755)


def test_failure_while_staging_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_stage, calls = atomic_write._stage, []

    def flaky_stage(path: Path, data: bytes) -> Path:
        calls.append(path.name)
        if len(calls) == 4:  # probe, obj, mtl staged; the texture fails (disk full)
            raise OSError(28, "No space left on device")
        return real_stage(path, data)

    monkeypatch.setattr(atomic_write, "_stage", flaky_stage)
    with pytest.raises(OutputError, match=r"x_texture\.png.*No space"):
        export_face(_recon(), tmp_path, "x")
    assert os.listdir(tmp_path) == []  # staged OBJ and MTL removed, nothing replaced


def test_failure_while_replacing_leaves_only_whole_files(tmp_path: Path) -> None:
    (tmp_path / "x.ply").mkdir()  # the PLY target is a folder: moving it into place fails
    with pytest.raises(OutputError, match=r"x\.ply"):
        export_face(_recon(), tmp_path, "x", formats=("obj", "ply"))
    leftovers = sorted(os.listdir(tmp_path))
    assert set(leftovers) <= {"x.ply", "x.obj", "x.mtl", "x_texture.png"}  # no temporary files


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export formats"):
        export_face(_recon(), tmp_path, "x", formats=("fbx",))
    with pytest.raises(ValueError, match="plain file name"):
        export_face(_recon(), tmp_path, "../x")
    recon = _recon()
    bad = FaceReconstruction(**{**{f: getattr(recon, f) for f in recon.__dataclass_fields__}, "uv": recon.uv[:4]})
    with pytest.raises(ValueError, match=r"uv must have shape \(9, 2\), got \(4, 2\)"):
        write_obj(tmp_path / "bad.obj", bad)
    assert not (tmp_path / "bad.obj").exists()


def test_npz_alone(tmp_path: Path) -> None:
    with np.load(write_npz(tmp_path / "r.npz", _recon())) as z:
        assert {"vertices", "position_map", "uv", "pose_rotation", "image_size"} <= set(z.files)


def test_ctrl_c_while_a_group_is_moved_takes_effect_after_the_whole_group(tmp_path, monkeypatch):
    """The signal arrives after the first file is in place: the other files still land, then it stops."""
    import os
    import signal

    from engine import atomic_write

    real_replace = os.replace
    calls = []

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(atomic_write.os, "replace", replace_then_interrupt)
    payloads = {tmp_path / f"f{k}.txt": f"file {k}".encode() for k in range(4)}
    # Ctrl-C's own handler (a shell ignores SIGINT in jobs it starts in the background, CI's among them)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic_write.write_files_atomically(payloads)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert all(p.read_bytes() == data for p, data in payloads.items())
    assert not list(tmp_path.glob(".*.tmp"))


def test_stale_temporary_files_are_removed_by_the_next_run(tmp_path):
    import os
    import time

    from engine.atomic_write import STALE_TEMP_S, check_writable

    stale = tmp_path / ".a.obj.0123456789ab.tmp"
    fresh = tmp_path / ".b.obj.ba9876543210.tmp"
    other = tmp_path / ".hidden-notes.tmp"  # not a name the engine writes: left alone
    for p in (stale, fresh, other):
        p.write_bytes(b"x")
    old = time.time() - 2 * STALE_TEMP_S
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    check_writable(tmp_path)
    assert not stale.exists() and fresh.exists() and other.exists()

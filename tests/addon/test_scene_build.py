"""Scene builders (prnet_blender/scene_build.py) on small synthetic results, in this process's bpy.

Each test starts from Blender's empty factory scene. The synthetic face is a 4 × 3 grid of canonical
points (mm) under a known pose, with triangles wound like the engine's (counter-clockwise seen from
the camera with y up), 68 landmarks and a texture whose rows are distinguishable.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from addon_env import NO_BPY_REASON, SAMPLE_PHOTO
from addon_tolerances import BLENDER_ROTATION_ENTRY, FLOAT32_M, PIXEL_LEVEL, UV_EXACT
from arrays import assert_close

bpy = pytest.importorskip("bpy", reason=NO_BPY_REASON)

from engine.landmarks import LANDMARK_NAMES  # noqa: E402
from engine.pose import euler_to_rotation  # noqa: E402
from prnet_blender import materials, scene_build  # noqa: E402
from prnet_blender.frames import MM_TO_M, engine_to_blender, rotation_to_blender  # noqa: E402
from prnet_blender.result import FaceResult  # noqa: E402

GRID = (3, 4)  # rows, columns of the synthetic mesh
TEXTURE_SHAPE = (4, 8, 3)
SAMPLE_SIZE = (512, 512)  # (height, width) of engine/data/astronaut.jpg


def synthetic_face(yaw=25.0, pitch=-10.0, roll=8.0, *, scale=2.5, t=(260.0, 240.0, 60.0)) -> FaceResult:
    rows, cols = GRID
    ys, xs = np.mgrid[0:rows, 0:cols]
    canonical = np.stack([xs * 20.0 - 30.0, ys * 20.0 - 20.0, 10.0 - 0.5 * (xs - 1.5) ** 2], -1).reshape(-1, 3)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    tris = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]).astype(np.int32)
    uv = np.stack([xs / (cols - 1), 1.0 - ys / (rows - 1)], -1).reshape(-1, 2).astype(np.float32)
    rot = euler_to_rotation(yaw, pitch, roll)
    t = np.asarray(t, np.float64)
    posed = scale * canonical @ rot.T + t
    lm_canonical = np.random.default_rng(0).uniform(-40, 40, (68, 3))
    texture = np.zeros(TEXTURE_SHAPE, np.uint8)
    texture[..., 0] = np.arange(TEXTURE_SHAPE[0])[:, None] * 60  # red encodes the row (0 = top)
    texture[..., 1] = np.arange(TEXTURE_SHAPE[1])[None, :] * 30  # green the column
    texture[..., 2] = 200
    return FaceResult(
        photo=str(SAMPLE_PHOTO), bundle_id="synthetic@000000000000", landmark_names=LANDMARK_NAMES,
        vertices=posed.astype(np.float32), frontal_vertices=canonical.astype(np.float32), polygons=tris, uv=uv,
        head_pivot=np.array(PIVOT_MM),
        landmarks_3d=(scale * lm_canonical @ rot.T + t).astype(np.float32),
        landmark_visibility=np.arange(68) % 2 == 0, texture=texture, rotation=rot, translation=t, scale=scale,
        yaw=yaw, pitch=pitch, roll=roll, box=(200.0, 180.0, 330.0, 310.0), image_size=SAMPLE_SIZE,
    )  # fmt: skip


PIVOT_MM = (1.0, 35.0, -70.0)  # canonical mm: a head pivot away from the canonical origin


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _counts() -> dict[str, int]:
    kinds = ("objects", "meshes", "images", "materials", "collections", "cameras")
    return {k: len(getattr(bpy.data, k)) for k in kinds}


def _world(obj) -> np.ndarray:
    return np.array(obj.matrix_world, dtype=np.float64)


def test_mesh_has_exact_counts_smooth_faces_and_the_frontal_vertices_in_blender_metres():
    face = synthetic_face()
    mesh = scene_build.build_mesh("grid", face)
    rows, cols = GRID
    n_tris = 2 * (rows - 1) * (cols - 1)
    assert (len(mesh.vertices), len(mesh.polygons), len(mesh.loops)) == (rows * cols, n_tris, 3 * n_tris)
    co = np.empty(3 * len(mesh.vertices), np.float32)
    mesh.vertices.foreach_get("co", co)
    x, y, z = (face.frontal_vertices - face.head_pivot).T.astype(np.float64)
    assert_close(co.reshape(-1, 3), np.stack([x, -z, -y], 1) * MM_TO_M, FLOAT32_M, "co = (x, −z, −y) mm → m")
    assert all(p.use_smooth and p.loop_total == 3 for p in mesh.polygons)


def test_faces_keep_the_engine_winding_so_normals_face_the_way_the_face_looks():
    face = synthetic_face(0.0, 0.0, 0.0)
    obj_frame = face.frontal_vertices * (1, -1, 1)  # the engine's mesh convention: y up, z to the viewer
    a, b, c = (obj_frame[face.polygons[:, k]] for k in range(3))
    assert (np.cross(b - a, c - a)[:, 2] > 0).all()  # the synthetic triangles follow that convention
    mesh = scene_build.build_mesh("grid", face)
    assert all(p.normal.y < -0.5 for p in mesh.polygons)  # the face looks along −Y


def test_uv_layer_holds_each_loops_vertex_uv_and_texture_rows_keep_their_place():
    face = synthetic_face()
    mesh = scene_build.build_mesh("grid", face)
    assert [layer.name for layer in mesh.uv_layers] == [scene_build.UV_LAYER_NAME]
    loop_uv = np.empty(2 * len(mesh.loops), np.float32)
    mesh.uv_layers[0].uv.foreach_get("vector", loop_uv)
    assert_close(loop_uv.reshape(-1, 2), face.uv[face.polygons.ravel()], UV_EXACT, "loop uv")
    image = materials.build_texture_image("tex", face.texture)
    h, w = TEXTURE_SHAPE[:2]
    assert tuple(image.size) == (w, h) and image.packed_file is not None
    px = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(px)
    px = px.reshape(h, w, 4)  # Blender: row 0 at the bottom = v 0
    assert_close(px[h - 1, :, :3], face.texture[0] / 255.0, PIXEL_LEVEL, "top texture row at v = 1")
    assert_close(px[0, :, :3], face.texture[-1] / 255.0, PIXEL_LEVEL, "bottom texture row at v = 0")


def test_a_worker_png_is_packed_as_is_with_the_same_orientation(tmp_path):
    import cv2

    face = synthetic_face()
    png = tmp_path / "face_1_texture.png"
    cv2.imwrite(str(png), np.ascontiguousarray(face.texture[..., ::-1]))
    image = materials.build_texture_image("tex", face.texture, png=str(png))
    assert image.name == "tex" and image.packed_file is not None and image.packed_file.size == png.stat().st_size
    png.unlink()  # the worker's file goes away after the build: the packed bytes remain
    h, w = TEXTURE_SHAPE[:2]
    px = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(px)
    assert_close(px.reshape(h, w, 4)[::-1, :, :3], face.texture / 255.0, PIXEL_LEVEL, "pixels, row 0 on top")


def test_build_photo_makes_the_posed_object_material_landmarks_and_camera():
    face = synthetic_face()
    built = scene_build.build_photo(bpy.context, [face])
    bpy.context.view_layer.update()
    obj = built.faces[0]
    assert built.collection.name == "astronaut" and obj.name == "astronaut"
    assert built.collection.name in bpy.context.scene.collection.children
    # pose: the object's rotation is the engine's, in Blender's frame, with Euler order XZY
    rot = _world(obj)[:3, :3]
    assert obj.rotation_mode == "XZY"
    assert_close(rot, rotation_to_blender(face.rotation), BLENDER_ROTATION_ENTRY, "object rotation vs C R Cᵀ")
    assert math.degrees(obj.rotation_euler.z) == pytest.approx(face.yaw, abs=1e-4)
    assert math.degrees(obj.rotation_euler.x) == pytest.approx(-face.pitch, abs=1e-4)
    # material: Principled BSDF ← Image Texture of a packed image
    mat = obj.data.materials[0]
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    linked = bsdf.inputs["Base Color"].links[0].from_node
    assert linked.type == "TEX_IMAGE" and linked.image.packed_file is not None
    # custom properties
    assert obj["prnet_source_photo"] == str(SAMPLE_PHOTO) and obj["prnet_bundle_id"] == face.bundle_id
    assert (obj["prnet_yaw"], obj["prnet_pitch"], obj["prnet_roll"]) == (face.yaw, face.pitch, face.roll)
    assert list(obj["prnet_box"]) == list(face.box)
    # landmarks: 68 children named by region in a "Landmarks" child collection, at the engine's landmarks
    lm_coll = built.collection.children[0]
    assert lm_coll.name == scene_build.LANDMARKS_COLLECTION
    empties = list(lm_coll.objects)
    assert [e.name for e in empties] == list(LANDMARK_NAMES) and all(e.parent is obj for e in empties)
    world = np.array([_world(e)[:3, 3] for e in empties])
    k = MM_TO_M / face.scale
    expected = engine_to_blender(face.landmarks_3d.astype(np.float64) - face.translation, unit=k)
    assert_close(world, expected, FLOAT32_M, "landmark empties in the world vs engine landmarks (m)")
    assert [e["prnet_visible"] for e in empties] == list(face.landmark_visibility)
    # camera: orthographic, photo in the background, the scene's camera at the photo's size
    cam = built.camera
    assert cam.data.type == "ORTHO" and bpy.context.scene.camera is cam
    assert cam.data.background_images[0].image.filepath == str(SAMPLE_PHOTO)
    assert (bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y) == SAMPLE_SIZE[::-1]
    assert bpy.context.view_layer.objects.active is obj


def test_the_object_origin_is_the_head_pivot_so_turning_the_head_keeps_the_neck_in_place():
    face = synthetic_face()
    built = scene_build.build_photo(bpy.context, [face])
    obj = built.faces[0]
    bpy.context.view_layer.update()
    pivot_px = face.scale * face.rotation @ np.array(PIVOT_MM) + face.translation  # the engine's posed pivot
    expected = engine_to_blender(pivot_px - face.translation, unit=MM_TO_M / face.scale)
    assert_close(_world(obj)[:3, 3], expected, FLOAT32_M, "object origin vs the posed head pivot (m)")
    chin = built.collection.children[0].objects[8]
    before = _world(chin)[:3, 3].copy()
    obj.rotation_euler.z += math.radians(30)  # turn the head
    bpy.context.view_layer.update()
    assert_close(_world(obj)[:3, 3], expected, FLOAT32_M, "the pivot stays where it was")
    assert np.linalg.norm(_world(chin)[:3, 3] - before) > 0.01  # the chin swings round (≥ 1 cm)


def test_re_posing_the_object_carries_the_landmarks():
    built = scene_build.build_photo(bpy.context, [synthetic_face()])
    obj = built.faces[0]
    empty = built.collection.children[0].objects[30]  # nose tip
    local = np.array(empty.location)
    obj.rotation_euler = (0.0, 0.0, math.radians(40.0))
    bpy.context.view_layer.update()
    assert_close(_world(empty)[:3, 3], _world(obj)[:3, :3] @ local + _world(obj)[:3, 3], FLOAT32_M, "follows")


def test_options_leave_out_landmarks_pose_and_camera():
    face = synthetic_face()
    opts = scene_build.BuildOptions(create_landmarks=False, apply_pose=False, add_camera=False)
    built = scene_build.build_photo(bpy.context, [face], opts)
    assert built.camera is None and not built.collection.children and bpy.context.scene.camera is None
    assert tuple(built.faces[0].rotation_euler) == (0.0, 0.0, 0.0)
    assert len(bpy.data.objects) == 1


def test_several_faces_share_one_collection_and_camera():
    faces = [synthetic_face(), synthetic_face(-20.0, 5.0, 0.0, scale=1.5, t=(420.0, 260.0, 30.0))]
    built = scene_build.build_photo(bpy.context, faces)
    assert [o.name for o in built.faces] == ["astronaut_1", "astronaut_2"]
    assert len(bpy.data.cameras) == 1 and built.faces[1].scale[0] == pytest.approx(1.5 / 2.5)


def test_a_failure_leaves_nothing_behind():
    good = synthetic_face()
    bad = FaceResult(**{**{f: getattr(good, f) for f in FaceResult.__slots__}, "texture": good.texture.astype(float)})
    before = _counts()
    with pytest.raises(ValueError, match="uint8"):
        scene_build.build_photo(bpy.context, [good, bad])  # the second face fails after the first was built
    assert _counts() == before


def test_a_full_size_mesh_builds_whole():
    """The real layout's 45k vertices and 89k triangles, all in the mesh (its speed is measured by
    benchmarks/blender_click.py, not asserted here)."""
    from engine.layout import default_layout

    lay = default_layout()
    face = synthetic_face()
    n = lay.n_vertices
    big = FaceResult(**{
        **{f: getattr(face, f) for f in FaceResult.__slots__},
        "frontal_vertices": lay.canonical_vertices.astype(np.float32), "polygons": lay.triangles.astype(np.int32),
        "uv": np.random.default_rng(0).random((n, 2), dtype=np.float32), "vertices": np.zeros((n, 3), np.float32),
    })  # fmt: skip
    mesh = scene_build.build_mesh("full", big)
    try:
        assert len(mesh.vertices) == n
        assert len(mesh.polygons) == len(lay.triangles)
        assert len(mesh.uv_layers) == 1 and len(mesh.uv_layers[0].data) == 3 * len(lay.triangles)
    finally:
        bpy.data.meshes.remove(mesh)


def test_unpacking_writes_one_file_per_face_and_each_face_keeps_its_pixels(tmp_path):
    """Two runs of one photo (same names) and a worker PNG per face, all named face_1_texture.png by
    the worker: saved, unpacked (WRITE_LOCAL) and reopened, every face still shows its own texture,
    and the photo behind the camera travels with the .blend."""
    import cv2

    textures = []
    for k in range(2):
        face = synthetic_face()
        texture = face.texture.copy()
        texture[..., 2] = 40 + 100 * k  # blue tells the two faces apart
        png = tmp_path / f"worker{k}" / "face_1_texture.png"
        png.parent.mkdir()
        cv2.imwrite(str(png), np.ascontiguousarray(texture[..., ::-1]))
        from dataclasses import replace

        keep = scene_build.BuildOptions(replace=False)
        scene_build.build_photo(bpy.context, [replace(face, texture=texture, texture_png=str(png))], keep)
        textures.append(texture)
        png.unlink()
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.file.unpack_all(method="WRITE_LOCAL")
    written = sorted((tmp_path / materials.TEXTURE_FOLDER).glob("*texture*.png"))
    assert len(written) == 2, written
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    faces = sorted((o for o in bpy.data.objects if o.type == "MESH"), key=lambda o: o.name)
    assert len(faces) == 2
    for obj, texture in zip(faces, textures):
        image = next(n for n in obj.active_material.node_tree.nodes if n.type == "TEX_IMAGE").image
        h, w = texture.shape[:2]
        px = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(px)
        assert_close(px.reshape(h, w, 4)[::-1, :, :3], texture / 255.0, PIXEL_LEVEL, f"{obj.name}'s pixels")
    photos = [i for i in bpy.data.images if i.filepath and "astronaut" in i.filepath]
    assert photos and all(i.packed_file is not None or Path(bpy.path.abspath(i.filepath)).is_file() for i in photos)


def test_a_photo_lands_at_the_given_origin_with_its_camera_still_matched():
    at_zero = scene_build.build_photo(bpy.context, [synthetic_face()])
    head, camera = np.array(at_zero.faces[0].location), np.array(at_zero.camera.location)
    origin = (1.5, -2.0, 0.75)
    moved = scene_build.build_photo(
        bpy.context, [synthetic_face()], scene_build.BuildOptions(origin=origin, replace=False)
    )
    assert_close(np.array(moved.faces[0].location), head + origin, FLOAT32_M, "head at the origin")
    assert_close(np.array(moved.camera.location), camera + origin, FLOAT32_M, "camera moved with it")


def test_a_batch_lays_photos_out_side_by_side_without_overlap():
    first = scene_build.build_photo(bpy.context, [synthetic_face()])
    second = scene_build.build_photo(bpy.context, [synthetic_face(yaw=-30.0)], scene_build.BuildOptions(replace=False))
    camera_offset = np.array(second.camera.location) - np.array(second.faces[0].location)
    scene_build.place_beside(second, first)
    bpy.context.view_layer.update()
    (_, first_right), (second_left, _) = scene_build.x_extent(first), scene_build.x_extent(second)
    assert second_left == pytest.approx(first_right + scene_build.HEAD_GAP_M, abs=1e-5)
    assert_close(
        np.array(second.camera.location) - np.array(second.faces[0].location), camera_offset, FLOAT32_M, "camera"
    )


def _results() -> list:
    return [c for c in bpy.context.scene.collection.children if "prnet_result_of" in c]


def test_running_a_photo_again_replaces_its_result_in_place_and_undo_brings_it_back():
    bpy.data.meshes.new("artist's own")  # never touched: not made by a build
    first = scene_build.build_photo(bpy.context, [synthetic_face()])
    first.faces[0].location.x += 0.3  # the artist moved the head
    where = np.array(first.faces[0].location)
    first_names = (first.collection.name, first.faces[0].name, first.camera.name)
    old_image = first.faces[0].active_material.node_tree.nodes["Image Texture"].image.name
    bpy.ops.ed.undo_push(message="first")
    counts = _counts()
    second = scene_build.build_photo(bpy.context, [synthetic_face(yaw=-10.0)])
    assert second.replaced == 1 and _results() == [second.collection]
    assert_close(np.array(second.faces[0].location), where, FLOAT32_M, "the new head takes the old one's place")
    assert _counts() == counts  # the old collection, objects, mesh, material, texture and camera are gone
    assert len([i for i in bpy.data.images if i.name.startswith(old_image)]) == 1 and "artist's own" in bpy.data.meshes
    assert bpy.context.scene.camera is second.camera
    assert (second.collection.name, second.faces[0].name, second.camera.name) == (first_names)
    image = second.faces[0].active_material.node_tree.nodes["Image Texture"].image
    assert image.name == old_image and image.filepath_raw.endswith(f"/{old_image}.png")
    bpy.ops.ed.undo_push(message="second")
    bpy.ops.ed.undo()
    (back,) = _results()
    head = next(o for o in back.objects if o.type == "MESH")
    assert_close(np.array(head.location), where, FLOAT32_M, "undo restores the previous result")
    assert old_image in bpy.data.images


def test_keep_previous_leaves_both_results_and_another_photo_is_never_replaced(tmp_path):
    import shutil
    from dataclasses import replace

    scene_build.build_photo(bpy.context, [synthetic_face()])
    scene_build.build_photo(bpy.context, [synthetic_face()], scene_build.BuildOptions(replace=False))
    other = tmp_path / "other.jpg"
    shutil.copyfile(SAMPLE_PHOTO, other)
    scene_build.build_photo(bpy.context, [replace(synthetic_face(), photo=str(other))])
    assert len(_results()) == 3


def test_the_cameras_photo_is_packed_unless_asked_not_to():
    built = scene_build.build_photo(bpy.context, [synthetic_face()])
    assert built.camera.data.background_images[0].image.packed_file is not None
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = scene_build.build_photo(bpy.context, [synthetic_face()], scene_build.BuildOptions(pack_photo=False))
    assert built.camera.data.background_images[0].image.packed_file is None

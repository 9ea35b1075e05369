"""Render what the add-on builds, for the README and as a visual check (Workbench, no GPU needed).

``PYTHONPATH=. python tests/addon/render_preview.py PHOTO OUT.png [--bundle DIR] [--texture-size N]
[--keep DIR]`` reconstructs
PHOTO with the engine worker, builds the scene with :mod:`prnet_blender.scene_build` in this
process's bpy and writes three panels side by side: the photo; the matched camera's view of the
posed mesh (Workbench, studio light) blended over the photo with the 68 landmark empties projected
as dots; the textured head turned 30° to show it is 3D. ``--keep DIR`` also keeps the raw renders
and a ``face.json`` (the engine's landmarks and vertices in photo px, the projected empties) for
tests/addon/test_render.py. BLENDER_USER_RESOURCES is pointed at a temporary folder unless set,
before bpy is imported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OVERLAY_ALPHA = 0.6  # share of the rendered mesh in the blended overlay panel
TURN_DEG = 30.0  # yaw added to the textured head in the third panel
LANDMARK_RADIUS_PX = 3
LANDMARK_BGR = (40, 220, 255)  # yellow dots
HEAD_MARGIN = 1.15  # ortho frame of the third panel / the head's larger extent


def _render(scene, path: Path, *, color_type: str) -> None:
    import bpy

    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = color_type
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def world_vertices(obj):
    """(V, 3) float64 world positions of a mesh object's (undeformed) vertices."""
    import numpy as np

    co = np.empty(3 * len(obj.data.vertices), np.float32)
    obj.data.vertices.foreach_get("co", co)
    m = np.array(obj.matrix_world)
    return co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]


def _blend(photo, render_rgba, alpha: float):
    import numpy as np

    a = render_rgba[..., 3:4].astype(np.float32) / 255.0 * alpha
    return (photo.astype(np.float32) * (1 - a) + render_rgba[..., :3].astype(np.float32) * a).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--bundle", help="model bundle (default: the shipped model)")
    parser.add_argument("--texture-size", type=int, default=1024)
    parser.add_argument("--keep", type=Path, help="folder for the raw renders and face.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="prnet_render_"))

    import bpy
    import cv2
    import numpy as np

    from prnet_blender import client, interpreter, scene_build
    from prnet_blender.frames import MM_TO_M
    from prnet_blender.result import FaceResult

    photo = str(args.photo.resolve())
    engine = client.EngineClient(os.environ.get(interpreter.ENGINE_PYTHON_ENV, sys.executable), root=REPO)
    try:
        reply = engine.call(
            "reconstruct", photo=photo, options={"bundle": args.bundle, "texture_size": args.texture_size}
        )
        faces = [FaceResult.from_reply(f, photo=photo, landmark_names=reply["landmark_names"]) for f in reply["faces"]]
    finally:
        engine.stop()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = scene_build.build_photo(bpy.context, faces)
    scene, obj, cam = bpy.context.scene, built.faces[0], built.camera
    bpy.context.view_layer.update()

    face = faces[0]
    k = MM_TO_M / face.scale
    # the matched camera maps world (X, Z) back to the photo's px: x = X / k + t0x, y = −Z / k + t0y
    dots = [
        (
            e.matrix_world.translation.x / k + face.translation[0],
            -e.matrix_world.translation.z / k + face.translation[1],
        )
        for e in built.collection.children[0].objects
    ]
    with tempfile.TemporaryDirectory() as tmp:
        _render(scene, Path(tmp) / "overlay.png", color_type="SINGLE")
        overlay = cv2.imread(str(Path(tmp) / "overlay.png"), cv2.IMREAD_UNCHANGED)
        # the third panel: the textured head, turned, framed by an ortho camera looking along +Y
        obj.rotation_euler = (0.0, 0.0, math.radians(TURN_DEG))
        bpy.context.view_layer.update()
        corners = world_vertices(obj)
        centre = (corners.min(0) + corners.max(0)) / 2
        extent = float(max(np.ptp(corners[:, 0]), np.ptp(corners[:, 2])))
        cam.location = (centre[0], centre[1] - 1.0, centre[2])
        cam.data.ortho_scale = extent * HEAD_MARGIN
        scene.render.resolution_x = scene.render.resolution_y
        _render(scene, Path(tmp) / "head.png", color_type="TEXTURE")
        head = cv2.imread(str(Path(tmp) / "head.png"), cv2.IMREAD_UNCHANGED)
        if args.keep is not None:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
            (args.keep / "face.json").write_text(json.dumps({
                "landmarks_px": face.landmarks_3d[:, :2].tolist(), "dots_px": dots,
                "vertices_px": face.vertices[:, :2].tolist(), "image_size": list(face.image_size),
            }))  # fmt: skip

    photo_bgr = cv2.imread(photo, cv2.IMREAD_COLOR)
    panel = _blend(photo_bgr, overlay, OVERLAY_ALPHA)
    for x, y in dots:
        cv2.circle(panel, (round(x), round(y)), LANDMARK_RADIUS_PX, LANDMARK_BGR, -1, cv2.LINE_AA)
    head_bgr = _blend(np.full_like(head[..., :3], 255), head, 1.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.hstack([photo_bgr, panel, head_bgr]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

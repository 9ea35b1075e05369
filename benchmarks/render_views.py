"""Render what the add-on builds from a photo as an artist inspects it (Workbench, no GPU needed).

``PYTHONPATH=. .venv/bin/python benchmarks/render_views.py PHOTO OUT.png [--texture-size N]
[--texture-mode M] [--mouth M] [--topology T] [--quad-cells N] [--quality Q] [--size PX]`` reconstructs PHOTO with
the engine worker, builds the scene with :mod:`prnet_blender.scene_build` in this process's bpy and
writes a grid: the matched camera's view over the photo (around the face), the head from three-quarter (45°) and from
the side (90°); textured on the top row, solid (studio light) below. Options the worker does not
know are left out of the request, so the same script renders an older checkout for a comparison.
BLENDER_USER_RESOURCES is pointed at a temporary folder unless set, before bpy is imported.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIEW_YAWS_DEG = (45.0, 90.0)  # three-quarter and side
HEAD_MARGIN = 1.2  # ortho frame of a head view / the head's larger extent
CAMERA_DISTANCE_M = 1.0
FACE_CROP = 1.6  # the camera-view panel shows the photo around the face box, this many box sides wide


def _render(scene, path: Path, color_type: str):
    """A Workbench render (tests/addon/render_preview.py's settings) read back as BGRA."""
    import cv2
    from render_preview import _render as render

    render(scene, path, color_type=color_type)
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _over(background, rgba):
    from render_preview import _blend

    return _blend(background, rgba, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--texture-size", type=int, default=1024)
    ap.add_argument("--texture-mode", default=None)
    ap.add_argument("--mouth", default=None)
    ap.add_argument("--topology", default=None)
    ap.add_argument("--quad-cells", type=int, default=None)
    ap.add_argument("--quality", default=None, help="full, preview or fast (default: the worker's)")
    ap.add_argument("--size", type=int, default=400, help="px of each square panel")
    args = ap.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="prnet_render_"))
    sys.path[:0] = [str(REPO), str(REPO / "tests" / "addon")]  # the engine, the add-on, render_preview

    import bpy
    import cv2
    import numpy as np
    from render_preview import world_vertices

    from prnet_blender import client, scene_build
    from prnet_blender.result import FaceResult

    photo = str(args.photo.resolve())
    options = {"texture_size": args.texture_size}
    for name in ("texture_mode", "mouth", "topology", "quad_cells", "quality"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    engine = client.EngineClient(sys.executable, root=REPO)
    try:
        reply = engine.call("reconstruct", photo=photo, options=options)
        faces = [FaceResult.from_reply(f, photo=photo, landmark_names=reply["landmark_names"]) for f in reply["faces"]]
    finally:
        engine.stop()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = scene_build.build_photo(bpy.context, faces[:1])
    scene, obj, cam = bpy.context.scene, built.faces[0], built.camera
    for child in built.collection.children:  # the landmark empties do not render, but keep the view clean
        child.hide_render = True
    bpy.context.view_layer.update()
    photo_bgr = cv2.imread(photo, cv2.IMREAD_COLOR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        matched = {ct: _render(scene, Path(tmp) / f"cam_{ct}.png", ct) for ct in ("TEXTURE", "SINGLE")}
        world = world_vertices(obj)
        centre = (world.min(0) + world.max(0)) / 2
        extent = float(np.ptp(world, axis=0).max())
        cam.data.ortho_scale = extent * HEAD_MARGIN
        scene.render.resolution_x = scene.render.resolution_y = args.size
        cam.data.show_background_images = False
        views = {ct: [] for ct in ("TEXTURE", "SINGLE")}
        for yaw in VIEW_YAWS_DEG:  # the camera swings round the head toward the subject's left
            a = math.radians(yaw)
            cam.location = (
                centre[0] + CAMERA_DISTANCE_M * math.sin(a),
                centre[1] - CAMERA_DISTANCE_M * math.cos(a),
                centre[2],
            )
            cam.rotation_euler = (math.pi / 2, 0.0, a)
            for ct in views:
                views[ct].append(_render(scene, Path(tmp) / f"v{yaw}_{ct}.png", ct))
    white = np.full((args.size, args.size, 3), 255, np.uint8)
    for ct in ("TEXTURE", "SINGLE"):
        over = _over(photo_bgr, matched[ct])
        left, top, right, bottom = faces[0].box
        side = FACE_CROP * max(right - left, bottom - top)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        h, w = over.shape[:2]
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        crop = over[y0:y1, x0:x1]
        s = args.size / max(crop.shape[:2])
        crop = cv2.resize(crop, (round(crop.shape[1] * s), round(crop.shape[0] * s)), interpolation=cv2.INTER_AREA)
        panel = white.copy()
        panel[: crop.shape[0], : crop.shape[1]] = crop[: args.size, : args.size]
        rows.append(np.hstack([panel, *(_over(white, v) for v in views[ct])]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

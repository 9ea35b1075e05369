"""Render a rigged head posed three ways (Workbench), for the README and as a visual check of the rig.

``PYTHONPATH=. .venv/bin/python benchmarks/render_rig.py PHOTO OUT.png [--size PX]`` reconstructs PHOTO
with the engine worker, builds the head and its face rig (prnet_blender.rig_build) in this process's
bpy, and writes four panels, textured, seen from 20° to the subject's left: at rest, the jaw open
(−15° about the jaw bone's X), the brows raised (every brow bone 5 mm up its Z), the head turned
(−30° about the head bone's Y).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POSES = {  # name → {bone: (rotation X°, rotation Y°, location Z m)}
    "rest": {},
    "jaw open": {"jaw": (-15.0, 0.0, 0.0)},
    "brows raised": {
        b: (0.0, 0.0, 0.005)
        for b in ("brow.R.outer", "brow.R.mid", "brow.R.inner", "brow.L.inner", "brow.L.mid", "brow.L.outer")
    },
    "head turned": {"head": (0.0, -30.0, 0.0)},
}
VIEW_YAW_DEG = 20.0
HEAD_MARGIN = 1.5  # ortho frame / the head's larger extent (room for the turn)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=360)
    args = ap.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="prnet_render_"))
    sys.path[:0] = [str(REPO), str(REPO / "tests" / "addon")]

    import bpy
    import cv2
    import numpy as np
    from render_preview import _blend, _render, world_vertices

    from prnet_blender import client, rig_build, scene_build
    from prnet_blender.result import FaceResult

    photo = str(args.photo.resolve())
    engine = client.EngineClient(sys.executable, root=REPO)
    try:
        reply = engine.call("reconstruct", photo=photo, options={"texture_size": 1024})
        face = FaceResult.from_reply(reply["faces"][0], photo=photo, landmark_names=reply["landmark_names"])
    finally:
        engine.stop()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = scene_build.build_photo(bpy.context, [face], scene_build.BuildOptions(create_landmarks=False))
    head, cam, scene = built.faces[0], built.camera, bpy.context.scene
    rig = rig_build.build_rig(bpy.context, head, eyeballs=False).armature
    bpy.context.view_layer.update()
    world = world_vertices(head)
    centre = (world.min(0) + world.max(0)) / 2
    a = math.radians(VIEW_YAW_DEG)
    cam.location = (centre[0] + math.sin(a), centre[1] - math.cos(a), centre[2])
    cam.rotation_euler = (math.pi / 2, 0.0, a)
    cam.data.ortho_scale = float(np.ptp(world, axis=0).max()) * HEAD_MARGIN
    cam.data.show_background_images = False
    scene.render.resolution_x = scene.render.resolution_y = args.size
    panels = []
    white = np.full((args.size, args.size, 3), 255, np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        for name, pose in POSES.items():
            for pb in rig.pose.bones:
                pb.rotation_mode = "XYZ"
                rx, ry, lz = pose.get(pb.name, (0.0, 0.0, 0.0))
                pb.rotation_euler = (math.radians(rx), math.radians(ry), 0.0)
                pb.location = (0.0, 0.0, lz)
            bpy.context.view_layer.update()
            path = Path(tmp) / f"{len(panels)}.png"
            _render(scene, path, color_type="TEXTURE")
            panel = _blend(white, cv2.imread(str(path), cv2.IMREAD_UNCHANGED), 1.0)
            cv2.putText(panel, name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1, cv2.LINE_AA)
            panels.append(panel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.hstack(panels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Render a tracked video as the animator sees it: the keyed head over the footage, frame by frame.

``PYTHONPATH=. .venv/bin/python benchmarks/render_track.py VIDEO OUT.png [--panels 4] [--fast]
[--mesh-cache] [--size PX]`` tracks VIDEO with the engine worker, builds the animated head with
:mod:`prnet_blender.track_build` in this process's bpy, and writes a grid: for evenly spaced frames,
the matched camera's Workbench render blended over that video frame (around the face), textured on
the top row and solid below. BLENDER_USER_RESOURCES is pointed at a temporary folder unless set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OVERLAY_ALPHA = 0.7  # share of the render in each panel: the footage shows through
FACE_CROP = 1.8  # each panel shows the frame around the head, this many landmark-box sides wide


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--panels", type=int, default=4)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--mesh-cache", action="store_true")
    ap.add_argument("--size", type=int, default=300, help="px of each square panel")
    args = ap.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="prnet_render_"))
    sys.path[:0] = [str(REPO), str(REPO / "tests" / "addon")]

    import bpy
    import cv2
    import numpy as np
    from render_preview import _blend, _render

    from prnet_blender import client, track_build
    from prnet_blender.frames import AXES, MM_TO_M
    from prnet_blender.result import FaceResult, TrackResult

    video = str(args.video.resolve())
    tmp = Path(tempfile.mkdtemp(prefix="prnet_track_render_"))
    options = {"fast": args.fast, "texture_size": 1024}
    if args.mesh_cache:
        options.update(mesh_cache=str(tmp / "cache.pc2"), mesh_cache_axes=(AXES * MM_TO_M).tolist())
    engine = client.EngineClient(sys.executable, root=REPO)
    try:
        reply = engine.call("track", video=video, options=options)
        face = FaceResult.from_reply(reply["faces"][0], photo=video, landmark_names=reply["landmark_names"])
        track = TrackResult.from_reply(reply, video=video)
    finally:
        engine.stop()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = track_build.build_track(bpy.context, face, track, track_build.TrackBuildOptions(mesh_cache=args.mesh_cache))
    for child in built.collection.children:
        child.hide_render = True
    scene = bpy.context.scene
    cap = cv2.VideoCapture(video)
    picks = np.linspace(0, len(track.frame) - 1, args.panels).round().astype(int)
    rows = {"TEXTURE": [], "SINGLE": []}
    for i in picks:
        index = int(track.frame[i])
        scene.frame_set(int(track_build.blender_frame(index)))
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = cap.read()
        if not ok:
            raise RuntimeError(f"cannot read frame {index} of {video}")
        lm = track.landmarks_3d[i][:, :2] if track.found[i] else track.landmarks_3d[track.found][0][:, :2]
        (cx, cy), side = lm.mean(axis=0), FACE_CROP * float(np.ptp(lm, axis=0).max())
        for ct in rows:
            path = tmp / f"f{index}_{ct}.png"
            _render(scene, path, color_type=ct)
            over = _blend(bgr, cv2.imread(str(path), cv2.IMREAD_UNCHANGED), OVERLAY_ALPHA)
            x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
            crop = over[y0 : int(cy + side / 2), x0 : int(cx + side / 2)]
            panel = cv2.resize(crop, (args.size, args.size), interpolation=cv2.INTER_AREA)
            cv2.putText(panel, f"frame {index}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
            rows[ct].append(panel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack([np.hstack(r) for r in rows.values()]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

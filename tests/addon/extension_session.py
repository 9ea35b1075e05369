"""One Blender session for tests/addon/test_extension.py, run in a fresh process (bpy as a module).

Installs the built extension zip into this process's BLENDER_USER_RESOURCES, drives the operators
the way a script or the UI's background mode would, and writes what it observed to a JSON file
for the test to check: ``python extension_session.py ZIP PHOTO NO_FACE_PHOTO FOLDER OUT_JSON``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import bpy
import numpy as np

ZIP, PHOTO, NO_FACE, FOLDER, OUT = sys.argv[1:6]
KINDS = ("objects", "meshes", "images", "materials", "collections", "cameras")
obs: dict = {}


def counts() -> dict[str, int]:
    return {k: len(getattr(bpy.data, k)) for k in KINDS}


def run(op, **kwargs) -> dict:
    """Call an operator; its result set or the error line Blender raises for an ERROR report."""
    t0 = time.perf_counter()
    try:
        result = sorted(op(**kwargs))
        error = None
    except RuntimeError as exc:
        result, error = None, str(exc).strip()
    return {"result": result, "error": error, "seconds": time.perf_counter() - t0}


t0 = time.perf_counter()
obs["install"] = sorted(
    bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
)
obs["install_seconds"] = time.perf_counter() - t0
package = next(a.module for a in bpy.context.preferences.addons if a.module.endswith(".prnet_blender"))
obs["package"] = package
client = sys.modules[f"{package}.client"]

window = bpy.context.window_manager.windows[0]
with bpy.context.temp_override(window=window, screen=window.screen):  # undo needs a window and screen
    bpy.ops.ed.undo_push(message="before reconstruction")
    before = counts()
    obs["photo"] = run(bpy.ops.prnet.reconstruct_photo, filepath=PHOTO, texture_size="512")
    obs["after_photo"] = counts()
    coll = bpy.data.collections[Path(PHOTO).stem]
    obj = next(o for o in coll.objects if o.type == "MESH")
    mesh = obj.data
    image = mesh.materials[0].node_tree.nodes["Image Texture"].image
    px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(px)
    np.save(Path(OUT).with_suffix(".texture.npy"), px.reshape(image.size[1], image.size[0], 4))
    landmarks = coll.children[0]
    cam = next(o for o in coll.objects if o.type == "CAMERA")
    bpy.context.view_layer.update()
    obs["face"] = {
        "collections": [c.name for c in coll.children],
        "n_vertices": len(mesh.vertices),
        "n_polygons": len(mesh.polygons),
        "uv_layers": [u.name for u in mesh.uv_layers],
        "image_size": list(image.size),
        "image_packed": image.packed_file is not None,
        "pixel_std": float(px.reshape(-1, 4)[:, :3].std()),
        "empties": [e.name for e in landmarks.objects if e.type == "EMPTY" and e.parent is obj],
        "rotation": [list(r) for r in obj.matrix_world.to_3x3()],
        "props": {k: obj[k] if isinstance(obj[k], (str, float, int)) else list(obj[k]) for k in obj.keys()},
        "camera": {"type": cam.data.type, "ortho_scale": cam.data.ortho_scale, "is_scene_camera":
                   bpy.context.scene.camera == cam, "background": cam.data.background_images[0].image.filepath},
    }  # fmt: skip
    saved = Path(OUT).with_suffix(".blend")
    bpy.ops.wm.save_as_mainfile(filepath=str(saved), copy=True)
    # Blender pushes an operator's undo step itself in the UI, not for bpy.ops calls in background
    # mode; push it here as the UI would, then undo it.
    bpy.ops.ed.undo_push(message="Reconstruct from Photo")
    bpy.ops.ed.undo()
    obs["after_undo"] = counts()
    obs["before"] = before

    obs["no_face"] = run(bpy.ops.prnet.reconstruct_photo, filepath=NO_FACE)
    obs["after_no_face"] = counts()

    real_submit = client.EngineClient.submit

    def submit_then_crash(self, *args, **kwargs):
        req = real_submit(self, *args, **kwargs)
        os.kill(self._proc.pid, signal.SIGKILL)  # the worker dies while the request is in flight
        return req

    client.EngineClient.submit = submit_then_crash
    obs["crashed"] = run(bpy.ops.prnet.reconstruct_photo, filepath=PHOTO, texture_size="512")
    client.EngineClient.submit = real_submit
    obs["after_crash"] = counts()
    obs["after_crash_retry"] = run(bpy.ops.prnet.reconstruct_photo, filepath=PHOTO, texture_size="512")

    obs["folder"] = run(bpy.ops.prnet.reconstruct_folder, directory=FOLDER, texture_size="512")
    obs["after_folder"] = counts()

    # File › Import's operator, the photo run again with the asset options: it replaces the last result
    obs["again"] = run(
        bpy.ops.prnet.reconstruct_photo, filepath=PHOTO, texture_size="512", topology="quads", mouth="open",
        texture_mode="photo",
    )  # fmt: skip
    obs["after_again"] = counts()
    again = bpy.data.collections[Path(PHOTO).stem]
    quads = next(o for o in again.objects if o.type == "MESH").data
    obs["again_mesh"] = {"sides": sorted({p.loop_total for p in quads.polygons}), "n_polygons": len(quads.polygons)}
    obs["imported"] = run(bpy.ops.prnet.import_face_photo, filepath=PHOTO)
    obs["after_import"] = counts()

worker = client.current_client()
pid = worker._proc.pid
bpy.ops.preferences.addon_disable(module=package)
try:
    os.kill(pid, 0)
    obs["worker_alive_after_disable"] = True
except ProcessLookupError:
    obs["worker_alive_after_disable"] = False
obs["workdir_after_disable"] = worker.workdir.exists()

bpy.ops.wm.open_mainfile(filepath=str(saved))
image = next(i for i in bpy.data.images if i.name.endswith("_texture"))
obs["reloaded_image"] = {"packed": image.packed_file is not None, "size": list(image.size)}
Path(OUT).write_text(json.dumps(obs, indent=1))

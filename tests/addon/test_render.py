"""The matched camera really overlays the photo: a Workbench render of the built scene (in a
subprocess, tests/addon/render_preview.py) puts the mesh where the engine's image-frame vertices
are, and the landmark empties project onto the engine's 2D landmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from addon_env import HAS_BPY, NO_BPY_REASON, REPO

pytestmark = pytest.mark.skipif(not HAS_BPY, reason=NO_BPY_REASON)
RENDER_TIMEOUT_S = 300
LANDMARK_PX = 0.05  # empties → Blender matrices (float32) → camera mapping → px
COVERED_MIN = 0.98  # engine vertices whose photo pixel the rendered mesh covers (edge pixels may miss)
AREA_RATIO = (0.9, 1.1)  # rendered silhouette / the engine vertices' footprint


@pytest.fixture(scope="module")
def rendered(mean_face_bundle, sample_photo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("render")
    script = REPO / "tests" / "addon" / "render_preview.py"
    cmd = [
        sys.executable, str(script), str(sample_photo), str(tmp / "preview.png"), "--bundle", str(mean_face_bundle),
        "--texture-size", "512", "--keep", str(tmp / "raw"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "BLENDER_USER_RESOURCES": str(tmp / "user")}
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return tmp


def test_the_preview_has_three_panels_of_the_photos_height(rendered, sample_photo):
    photo = cv2.imread(str(sample_photo))
    preview = cv2.imread(str(rendered / "preview.png"))
    h, w = photo.shape[:2]
    assert preview.shape == (h, 2 * w + h, 3)
    assert np.array_equal(preview[:, :w], photo)


def test_landmark_empties_project_onto_the_engine_landmarks(rendered):
    face = json.loads((rendered / "raw" / "face.json").read_text())
    err = np.abs(np.array(face["dots_px"]) - np.array(face["landmarks_px"])).max()
    assert err < LANDMARK_PX, f"worst landmark offset {err:.3f} px"


def test_the_camera_view_puts_the_mesh_over_the_face(rendered):
    face = json.loads((rendered / "raw" / "face.json").read_text())
    alpha = cv2.imread(str(rendered / "raw" / "overlay.png"), cv2.IMREAD_UNCHANGED)[..., 3] > 0
    assert alpha.shape == tuple(face["image_size"])
    v = np.rint(np.array(face["vertices_px"])).astype(int)
    assert alpha[v[:, 1], v[:, 0]].mean() > COVERED_MIN
    footprint = np.zeros_like(alpha, np.uint8)
    cv2.fillConvexPoly(footprint, cv2.convexHull(v.astype(np.int32)), 1)
    ratio = alpha.sum() / footprint.sum()
    assert AREA_RATIO[0] < ratio < AREA_RATIO[1], f"silhouette / footprint = {ratio:.3f}"

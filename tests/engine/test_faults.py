"""Fault injection across the engine's interfaces: what a user gets from bad input, a stopped run and a
long batch. (Single faults live beside their code: damaged and huge photos in test_image_io, boxes in
test_api and test_cli, bad requests in test_worker, interrupted writes in test_export and test_cli.)
This module holds the ones that span a run: a soak whose memory stays flat and whose output is whole.
"""

from __future__ import annotations

import json
import resource

import cv2
import numpy as np
from synthetic import gradient_photo

from engine.cli import main

SOAK_PHOTOS = 16  # enough for caches to settle; the 150-photo soak of issue 40 is not a unit test
SOAK_RSS_GROWTH_MB = 150.0  # peak RSS growth over the soak (measured ≈ 20 MB: caches fill on the first photos)
FACE_FILES = (".obj", ".mtl", "_texture.png", ".landmarks.json", ".pose.json")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def test_a_soak_keeps_memory_flat_and_every_face_whole(mean_face_bundle, tmp_path):
    """16 photos (one unreadable, one without a face) through the CLI in one run: every readable face
    has all its files, the two others are reported, and peak memory grows by little after warm-up."""
    rng = np.random.default_rng(0)
    photos, boxes = [], {}
    for k in range(SOAK_PHOTOS):
        path = tmp_path / f"p{k:02d}.png"
        shift = rng.integers(-40, 40, size=2)
        cv2.imwrite(str(path), np.roll(gradient_photo(), tuple(shift), axis=(0, 1)))
        boxes[path.name] = [[220 + shift[1], 140 + shift[0], 420 + shift[1], 340 + shift[0]]]
        photos.append(path)
    (tmp_path / "p03.png").write_bytes(b"not an image")
    blank = tmp_path / "p07.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 127, np.uint8))
    del boxes["p07.png"]  # detection finds nothing there
    box_file = tmp_path / "boxes.json"
    box_file.write_text(json.dumps({k: [list(map(int, b)) for b in v] for k, v in boxes.items()}))
    out = tmp_path / "out"
    args = ["reconstruct", *map(str, photos[:3]), "-o", str(out), "--bundle", str(mean_face_bundle)]
    assert main([*args, "--boxes", str(box_file), "--texture-size", "256"]) == 0  # warm-up
    before = _peak_rss_mb()
    args = ["reconstruct", *map(str, photos), "-o", str(out), "--bundle", str(mean_face_bundle)]
    assert main([*args, "--boxes", str(box_file), "--texture-size", "256"]) == 1  # p03 is unreadable
    assert _peak_rss_mb() - before < SOAK_RSS_GROWTH_MB
    stems = {p.stem for p in out.glob("*.obj")}
    assert stems == {p.stem for p in photos} - {"p03", "p07"}
    for stem in stems:
        assert all((out / f"{stem}{suffix}").is_file() for suffix in FACE_FILES), stem
    assert not list(out.glob(".*.tmp"))

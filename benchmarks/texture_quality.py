"""Benchmark: how complete and seamless face textures are (engine.texture_quality) on photos.

``PYTHONPATH=. .venv/bin/python benchmarks/texture_quality.py [PHOTO ...] [--dev DIR --every N]``
reconstructs each photo with the shipped model (our detection, the largest face) in both texture
modes and prints, per photo and per |yaw| bin of an AFLW2000-3D style folder (``yaw.npy``), the
share of the face region the photo shows, the share left black (``photo`` mode leaves the hidden
texels black; ``complete`` should leave none; photos are first lifted to levels ≥ 16, so black
means a hole), and the seam ratio (colour change across the border of the seen region over the
change inside it; 1 = no seam) of the complete texture and, for reference, of a plain mirror copy
(each hidden texel takes its mirror texel's colour). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
YAW_BINS = ((0, 30), (30, 60), (60, 90))  # degrees, as the benchmark's NME bins
SIZE = 1024  # the default texture size
LIFT = 16  # photos are mapped to levels LIFT..255 so a black texel is a hole, not dark photo content


def lifted(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 with levels mapped linearly from 0..255 to LIFT..255."""
    return (LIFT + rgb.astype(np.float32) * ((255 - LIFT) / 255)).round().astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="*", type=Path)
    ap.add_argument("--dev", type=Path, default=None, help="an AFLW2000-3D style folder (list.txt, yaw.npy)")
    ap.add_argument("--every", type=int, default=20, help="with --dev: every N-th photo of list.txt")
    ap.add_argument("--bundle", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from engine.api import Reconstructor
    from engine.image_io import load_image, sample_photo_path
    from engine.layout import default_layout
    from engine.texture import face_texels, mirror_texels
    from engine.texture_quality import measure_texture

    photos = [(p, None) for p in args.photos]
    if args.dev is not None:
        names = (args.dev / "list.txt").read_text().split()
        yaw = np.load(args.dev / "yaw.npy")
        photos += [(args.dev / names[i], float(yaw[i])) for i in range(0, len(names), args.every)]
    photos = photos or [(sample_photo_path(), None)]
    face = face_texels(default_layout(), SIZE)
    mirror = mirror_texels(default_layout(), SIZE)
    rec = Reconstructor.from_bundle(args.bundle)
    print(f"{'photo':<24} {'|yaw|':>6} seen  black(photo) black(complete) seam(complete) seam(copy)")
    rows = []
    for photo, yaw in photos:
        rgb = lifted(load_image(photo))
        complete = rec(rgb, all_faces=False, texture_size=SIZE)
        if not complete:
            print(f"{Path(photo).name:<24} no face")
            continue
        plain = rec(rgb, all_faces=False, texture_size=SIZE, texture_mode="photo")[0]
        full = complete[0]
        # the plain mirror copy (each hidden texel takes its mirror texel's photo colour): the seam reference
        copied = plain.texture.copy()
        mirrored = cv2.remap(plain.texture, mirror, None, cv2.INTER_NEAREST)
        copied[~plain.texture_mask] = mirrored[~plain.texture_mask]
        q_full = measure_texture(full.texture, full.texture_mask, face)
        q_plain = measure_texture(plain.texture, plain.texture_mask, face)
        q_copy = measure_texture(copied, plain.texture_mask, face)
        rows.append((yaw, q_full, q_plain, q_copy))
        shown = "" if yaw is None else f"{yaw:6.1f}"
        print(
            f"{Path(photo).name:<24} {shown:>6} {q_full.seen_fraction:5.3f} {q_plain.empty_fraction:12.3f} "
            f"{q_full.empty_fraction:15.4f} {q_full.seam_ratio:14.2f} {q_copy.seam_ratio:12.2f}"
        )
    for lo, hi in YAW_BINS:
        in_bin = [r for r in rows if r[0] is not None and (lo < r[0] <= hi or (lo == 0 and r[0] == 0))]
        if not in_bin:
            continue
        full, plain, copy = ([r[k] for r in in_bin] for k in (1, 2, 3))
        print(
            f"|yaw| ({lo}, {hi}]: {len(in_bin)} photos, seen {statistics.median(q.seen_fraction for q in full):.3f}, "
            f"black photo-only {statistics.median(q.empty_fraction for q in plain):.3f}, "
            f"black complete max {max(q.empty_fraction for q in full):.4f}, "
            f"seam median {statistics.median(q.seam_ratio for q in full):.2f} "
            f"(max {max(q.seam_ratio for q in full):.2f}); "
            f"plain mirror copy: seam median {statistics.median(q.seam_ratio for q in copy):.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the surface quality of reconstructed meshes (engine.mesh_quality) on photos.

``PYTHONPATH=. .venv/bin/python benchmarks/mesh_quality.py [PHOTO ...] [--dev DIR --every N]``
reconstructs each photo with the shipped model (our detection, the largest face) and prints, per
photo and over all of them, the four measures of the surface (the layout's grid triangles):
zero-area triangles, edges longer than 8× the median edge, the median normal deviation (degrees)
and the border roughness; the layout's own mean face is printed first as the reference. The last
column counts the long edges of the mesh as built with the default closed mouth (engine.mouth),
whose strip across the lips is long where the photo's mouth is open. ``--dev`` takes the photos of
an AFLW2000-3D style folder (``list.txt``), every N-th one. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="*", type=Path)
    ap.add_argument("--dev", type=Path, default=None, help="an AFLW2000-3D style folder (list.txt)")
    ap.add_argument("--every", type=int, default=10, help="with --dev: every N-th photo of list.txt")
    ap.add_argument("--bundle", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from engine.api import Reconstructor
    from engine.image_io import sample_photo_path
    from engine.layout import default_layout
    from engine.mesh_quality import long_edges, measure_mesh

    photos = list(args.photos)
    if args.dev is not None:
        names = (args.dev / "list.txt").read_text().split()
        photos += [args.dev / n for n in names[:: args.every]]
    photos = photos or [sample_photo_path()]
    layout = default_layout()
    print(f"{'photo':<28} zero-area  long-edges  normal-dev(deg)  border-roughness  long-edges(closed mouth)")
    _row("layout mean face", measure_mesh(layout.canonical_vertices, layout.triangles))
    closed_long = []
    rec = Reconstructor.from_bundle(args.bundle)
    found = []
    for photo in photos:
        faces = rec(photo, all_faces=False, texture_size=256)
        if not faces:
            print(f"{Path(photo).name:<28} no face")
            continue
        found.append(measure_mesh(faces[0].vertices, layout.triangles))
        closed_long.append(long_edges(faces[0].vertices, faces[0].triangles))
        _row(Path(photo).name, found[-1], closed_long[-1])
    if found:
        print(
            f"{len(found)} meshes: zero-area total {sum(q.zero_area_triangles for q in found)}, "
            f"long edges total {sum(q.long_edges for q in found)}, normal deviation median "
            f"{statistics.median(q.normal_deviation_deg for q in found):.2f}° (max "
            f"{max(q.normal_deviation_deg for q in found):.2f}°), border roughness median "
            f"{statistics.median(q.border_roughness for q in found):.3f} "
            f"(max {max(q.border_roughness for q in found):.3f}); with the closed mouth, long edges on "
            f"{sum(n > 0 for n in closed_long)} meshes (total {sum(closed_long)})"
        )
    return 0


def _row(name: str, q, closed_long: int | None = None) -> None:
    print(
        f"{name:<28} {q.zero_area_triangles:>9}  {q.long_edges:>10}  {q.normal_deviation_deg:>15.2f}  "
        f"{q.border_roughness:>16.3f}  {'' if closed_long is None else closed_long:>23}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: "Reconstruct from photo" in Blender with a warm engine worker → objects in the scene.

``PYTHONPATH=. .venv/bin/python benchmarks/blender_click.py [PHOTO] [--repeats N] [--quality Q]`` registers the
add-on from this checkout in bpy (background mode, where the operator runs synchronously), points
the engine at this interpreter, and times the operator: the first call (worker start + model load)
and the median of the warm calls, plus the mesh build alone. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=str(REPO / "engine" / "data" / "astronaut.jpg"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quality", default="full", help="full, preview or fast (the operator's Quality)")
    args = ap.parse_args()
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="prnet_bench_"))
    os.environ.setdefault("PRNET_ENGINE_PYTHON", sys.executable)
    import bpy  # after BLENDER_USER_RESOURCES

    addon_utils = importlib.import_module("addon_utils")  # on sys.path once bpy is imported

    addon_utils.enable("prnet_blender", default_set=True)
    times = []
    for _ in range(args.repeats + 1):
        before = set(bpy.data.objects)
        t0 = time.perf_counter()
        bpy.ops.prnet.reconstruct_photo(filepath=args.photo, quality=args.quality)
        times.append((time.perf_counter() - t0) * 1e3)
        for obj in set(bpy.data.objects) - before:
            bpy.data.objects.remove(obj)
    mesh = next(m for m in bpy.data.meshes if len(m.vertices) > 40_000)
    n = len(mesh.vertices)
    first = f"first click (worker start + model load) {times[0]:.0f} ms"
    sys.stdout.write(f"photo {Path(args.photo).name}, quality {args.quality}: {first}\n")
    sys.stdout.write(
        f"warm click → objects in scene: median {statistics.median(times[1:]):.0f} ms "
        f"over {args.repeats} runs ({n} vertices)\n"
    )
    addon_utils.disable("prnet_blender")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m engine bench``: per-stage latency of one photo → mesh + texture + landmarks + pose.

The sample photo (512²) is placed on a 1280×960 canvas, the size of a typical phone/webcam still,
so that decoding and detection cost what they would on a real photo. Each stage's median over the
repeats is printed for every available device, after warm-up runs (first calls allocate and JIT).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .api import Reconstructor
from .device import available_devices
from .image_io import load_image, sample_photo_path
from .options import DEFAULT_TEXTURE_SIZE, ReconstructOptions

BENCH_SIZE = (960, 1280)  # (height, width) of the benchmark photo
WARMUP_RUNS = 3


def bench_photo() -> np.ndarray:
    """(960, 1280, 3) uint8 RGB: the sample portrait scaled to the canvas height, centred."""
    face = load_image(sample_photo_path())
    h, w = BENCH_SIZE
    scaled = cv2.resize(face, (h * face.shape[1] // face.shape[0], h), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((h, w, 3), 96, np.uint8)
    x0 = (w - scaled.shape[1]) // 2
    canvas[:, x0 : x0 + scaled.shape[1]] = scaled
    return canvas


def run_bench(
    *,
    bundle: str | Path | None = None,
    devices: list[str] | None = None,
    repeats: int = 20,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> dict[str, dict[str, float]]:
    """Print and return ``{device: {stage: median ms, "total": ms}}``."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "bench.jpg"
        if not cv2.imwrite(str(photo), cv2.cvtColor(bench_photo(), cv2.COLOR_RGB2BGR)):
            raise RuntimeError("could not write the benchmark photo")
        for device in devices or available_devices():
            results[device] = _bench_device(photo, bundle, device, repeats, texture_size)
    return results


def _bench_device(photo: Path, bundle: str | Path | None, device: str, repeats: int, texture_size: int) -> dict:
    rec = Reconstructor.from_bundle(bundle, ReconstructOptions(device=device))
    samples: dict[str, list[float]] = {name: [] for name in rec.last_times.as_dict()}
    totals = []
    for i in range(WARMUP_RUNS + repeats):
        if not rec(photo, all_faces=False, texture_size=texture_size):
            raise RuntimeError("benchmark photo: no face found")
        if i >= WARMUP_RUNS:
            for name, ms in rec.last_times.as_dict().items():
                samples[name].append(ms)
            totals.append(rec.last_times.total)
    med = {k: statistics.median(v) for k, v in samples.items()}
    med["total"] = statistics.median(totals)
    sys.stdout.write(
        f"{device}: {rec.bundle.bundle_id}, photo {BENCH_SIZE[1]}x{BENCH_SIZE[0]}, texture {texture_size}², "
        f"{repeats} runs (median ms)\n"
    )
    for k, v in med.items():
        sys.stdout.write(f"  {k:<9} {v:8.1f}\n")
    return med

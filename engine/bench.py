"""``python -m engine bench``: per-stage latency of one photo → mesh + texture + landmarks + pose + files.

The sample photo (512²) is placed on a 1280×960 canvas, the size of a typical phone/webcam still,
so that decoding and detection cost what they would on a real photo. For every available device and
each quality (engine.options.QUALITIES; "fast" when the fast model is installed), the median of each
stage over the repeats is printed after warm-up runs (first calls allocate and JIT): the stages of
engine.stage_times, writing the default files of the face (OBJ, MTL, texture PNG, landmark and pose
JSON), the crops the network ran per face, the ms per crop of the network stage and of the model's
forward pass alone, and — measured in the same process, as the yardstick of the speed goal — the
PRNet network alone (ResFCN at 256², fp32, channels_last, batch 1, random weights) and the total's
ratio to it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .api import Reconstructor
from .device import available_devices
from .export import export_face
from .image_io import load_image, sample_photo_path
from .options import DEFAULT_TEXTURE_SIZE, QUALITIES, ReconstructOptions

BENCH_SIZE = (960, 1280)  # (height, width) of the benchmark photo
WARMUP_RUNS = 3
REFERENCE_INPUT = 256  # PRNet's own input size: the reference network of the speed goal


def bench_photo() -> np.ndarray:
    """(960, 1280, 3) uint8 RGB: the sample portrait scaled to the canvas height, centred."""
    face = load_image(sample_photo_path())
    h, w = BENCH_SIZE
    scaled = cv2.resize(face, (h * face.shape[1] // face.shape[0], h), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((h, w, 3), 96, np.uint8)
    x0 = (w - scaled.shape[1]) // 2
    canvas[:, x0 : x0 + scaled.shape[1]] = scaled
    return canvas


def forward_ms(net, input_size: int, batch: int, device: str, repeats: int) -> float:
    """Median ms per image of one forward of ``net`` on a random (batch, 3, S, S) channels_last input,
    after :data:`WARMUP_RUNS` untimed ones."""
    import torch

    x = torch.rand(batch, 3, input_size, input_size, device=device).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for i in range(WARMUP_RUNS + repeats):
            t0 = time.perf_counter()
            net(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= WARMUP_RUNS:
                times.append((time.perf_counter() - t0) * 1e3 / batch)
    return statistics.median(times)


def reference_network_ms(device: str, repeats: int) -> float:
    """Median ms of one forward of PRNet's ResFCN (256², fp32, channels_last, batch 1) on ``device``."""
    import torch

    from .network import ResFCN

    net = ResFCN(input_size=REFERENCE_INPUT).eval().to(device, memory_format=torch.channels_last)
    return forward_ms(net, REFERENCE_INPUT, 1, device, repeats)


def run_bench(
    *,
    bundle: str | Path | None = None,
    devices: list[str] | None = None,
    repeats: int = 20,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> dict[str, dict[str, dict[str, float]]]:
    """Print and return ``{device: {quality: {stage: median ms, "files", "total", "images",
    "reference", "ratio", "forward"}}}``."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "bench.jpg"
        if not cv2.imwrite(str(photo), cv2.cvtColor(bench_photo(), cv2.COLOR_RGB2BGR)):
            raise RuntimeError("could not write the benchmark photo")
        for device in devices or available_devices():
            rec = Reconstructor.from_bundle(bundle, ReconstructOptions(device=device))
            reference = reference_network_ms(device, repeats)
            results[device] = {}
            for quality in (q for q in QUALITIES if q != "fast" or rec.has_fast_model):
                med = _bench_quality(rec, photo, Path(tmp), quality, repeats, texture_size)
                passes = rec.passes_for(quality)
                forward = forward_ms(passes.model, passes.input_size, 2, device, repeats)  # a crop + its mirror
                med.update(reference=reference, ratio=med["total"] / reference, forward=forward)
                results[device][quality] = med
            _print(device, rec, results[device], repeats, texture_size)
    return results


def _bench_quality(rec, photo: Path, out: Path, quality: str, repeats: int, texture_size: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in (*rec.last_times.as_dict(), "files", "total")}
    images = []
    for i in range(WARMUP_RUNS + repeats):
        faces = rec(photo, all_faces=False, texture_size=texture_size, quality=quality)
        if not faces:
            raise RuntimeError("benchmark photo: no face found")
        t0 = time.perf_counter()
        export_face(faces[0], out, "bench")
        files_ms = (time.perf_counter() - t0) * 1e3
        if i >= WARMUP_RUNS:
            for name, ms in rec.last_times.as_dict().items():
                samples[name].append(ms)
            samples["files"].append(files_ms)
            samples["total"].append(rec.last_times.total + files_ms)
            images.append(rec.passes_for(quality).images)
    med = {k: statistics.median(v) for k, v in samples.items()}
    med["images"] = statistics.median(images)
    return med


def _print(device: str, rec, by_quality: dict, repeats: int, texture_size: int) -> None:
    sys.stdout.write(
        f"{device}: {', '.join(rec.bundle_for(q).bundle_id for q in by_quality if q in ('full', 'fast'))}, "
        f"photo {BENCH_SIZE[1]}x{BENCH_SIZE[0]}, texture {texture_size}², "
        f"{repeats} runs (median ms)\n"
    )
    sys.stdout.write(f"  {'stage':<10}" + "".join(f"{q:>10}" for q in by_quality) + "\n")
    for key in next(iter(by_quality.values())):
        if key in ("reference", "ratio", "images", "forward"):
            continue
        sys.stdout.write(f"  {key:<10}" + "".join(f"{m[key]:10.1f}" for m in by_quality.values()) + "\n")
    sys.stdout.write(f"  {'crops/face':<10}" + "".join(f"{m['images']:10.0f}" for m in by_quality.values()) + "\n")
    per_crop = "".join(f"{m['network'] / max(m['images'], 1):10.1f}" for m in by_quality.values())
    sys.stdout.write(f"  {'ms/crop':<10}" + per_crop + "  (network stage / crops: passes, read-outs, fits)\n")
    forward = "".join(f"{m['forward']:10.1f}" for m in by_quality.values())
    sys.stdout.write(f"  {'forward':<10}" + forward + "  (ms per crop, the network alone, a crop + its mirror)\n")
    reference = next(iter(by_quality.values()))["reference"]
    sys.stdout.write(f"  PRNet ResFCN 256² alone (fp32, channels_last, batch 1): {reference:.1f} ms\n")
    sys.stdout.write(f"  {'× PRNet':<10}" + "".join(f"{m['ratio']:10.2f}" for m in by_quality.values()) + "\n")

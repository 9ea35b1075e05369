"""Pack what an accelerator run needs into one small folder: a lent GPU machine has no ../shared data.

A lent machine receives a limited amount with the repository (``--max-mib``: 64 MiB when this was
written), so the pack holds the trusted training
crops WebP-encoded (the 824 MB of decoded crops would not travel; quality 75 keeps them at ≈35 dB
PSNR against the JPEG originals), their refined parameters and |yaw|, the label basis at the
network's output size (so the BFM basis need not travel), and the dev roi crops at the input size
(WebP quality 90) with their crop transforms and ground truth, for the per-evaluation dev figures.

Run (after ``python -m training.labels``):
``python -m training.pack --out .gpu/pack --input-size 160``; ``load_pack`` reads it back.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.crop import CropTransform
from engine.layout import default_layout

from .bfm import load_basis, load_topology
from .dataset import LabelBasis, build_label_basis
from .evaluate import DevSet
from .paths import default_cache_dir, shared_data_dir

TRAIN_QUALITY = 75  # WebP quality of the training crops (the pack's size budget, see the docstring)
DEV_QUALITY = 90  # the dev crops are few; keep them closer to the originals
MAX_PACK_MIB = 64.0  # default of --max-mib: what a lent machine received with the repository


@dataclass(frozen=True, slots=True, eq=False)
class Pack:
    crops_rgb: np.ndarray  # (N, 120, 120, 3) uint8, trusted training crops
    params: np.ndarray  # (N, 62) float32 refined teacher parameters
    yaw: np.ndarray  # (N,) degrees
    label_basis: LabelBasis
    dev: DevSet


def _encode(images_rgb: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, h, w, 3) RGB → (concatenated WebP bytes, (N + 1,) offsets)."""
    blobs = []
    for im in images_rgb:
        ok, buf = cv2.imencode(".webp", np.ascontiguousarray(im[..., ::-1]), [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise RuntimeError("WebP encoding failed (OpenCV built without WebP?)")
        blobs.append(buf.ravel())
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    return np.concatenate(blobs), offsets


def _decode(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = [cv2.imdecode(data[a:b], cv2.IMREAD_COLOR)[..., ::-1] for a, b in zip(offsets[:-1], offsets[1:])]
    return np.ascontiguousarray(np.stack(out))


def write_pack(out: Path, labels: Path, train_data: Path, dev_dir: Path, input_size: int) -> None:
    """Gather the trusted crops and labels, the label basis at ``input_size`` and the dev set, and save them."""
    keep = np.flatnonzero(np.load(labels / "keep.npy"))
    save_pack(
        out,
        crops_rgb=np.load(labels / "crops_bgr.npy", mmap_mode="r")[keep][..., ::-1],
        params=np.load(labels / "params_refined.npy")[keep],
        yaw=np.load(train_data / "yaw.npy")[keep],
        lb=build_label_basis(load_topology(), load_basis(), default_layout(), input_size),
        dev=DevSet.load(dev_dir, input_size),
    )


def save_pack(
    out: Path, *, crops_rgb: np.ndarray, params: np.ndarray, yaw: np.ndarray, lb: LabelBasis, dev: DevSet
) -> None:
    """Write a pack folder (train.npz, label_basis.npz, dev.npz) that :func:`load_pack` reads."""
    if lb.size != dev.crops.shape[1]:
        raise ValueError(f"label basis for output {lb.size} but dev crops of {dev.crops.shape[1]} px")
    out.mkdir(parents=True, exist_ok=True)
    data, offsets = _encode(crops_rgb, TRAIN_QUALITY)
    np.savez(
        out / "train.npz",
        webp=data,
        offsets=offsets,
        params=np.asarray(params, np.float32),
        yaw=np.asarray(yaw, np.float32),
    )
    np.savez(out / "label_basis.npz", size=lb.size, pixels=lb.pixels, basis=lb.basis, weights=lb.weights)
    dev_data, dev_offsets = _encode(dev.crops, DEV_QUALITY)
    t = dev.transforms
    np.savez(
        out / "dev.npz",
        webp=dev_data,
        offsets=dev_offsets,
        names=np.array(dev.names),
        crop=np.array([[c.left, c.top, c.scale] for c in t]),
        size=t[0].size,
        gt=dev.gt,
        yaw=dev.yaw,
    )


def load_pack(folder: Path) -> Pack:
    tr = np.load(folder / "train.npz")
    b = np.load(folder / "label_basis.npz")
    lb = LabelBasis(size=int(b["size"]), pixels=b["pixels"], basis=b["basis"], weights=b["weights"])
    d = np.load(folder / "dev.npz")
    size = int(d["size"])
    transforms = [CropTransform(left=float(a), top=float(c), scale=float(s), size=size) for a, c, s in d["crop"]]
    dev = DevSet([str(n) for n in d["names"]], _decode(d["webp"], d["offsets"]), transforms, d["gt"], d["yaw"])
    return Pack(_decode(tr["webp"], tr["offsets"]), tr["params"], tr["yaw"], lb, dev)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--input-size", type=int, required=True, help="the network's input (and output) side")
    ap.add_argument("--labels", type=Path, default=default_cache_dir() / "labels")
    ap.add_argument("--train-data", type=Path, default=shared_data_dir() / "aflw_train")
    ap.add_argument("--dev", type=Path, default=shared_data_dir() / "aflw2000_dev")
    ap.add_argument("--max-mib", type=float, default=MAX_PACK_MIB, help="what the machine it is for receives, MiB")
    args = ap.parse_args(argv)
    write_pack(args.out, args.labels, args.train_data, args.dev, args.input_size)
    total = sum(f.stat().st_size for f in args.out.iterdir()) / 2**20
    print(f"pack written to {args.out}: {total:.1f} MiB", flush=True)
    if total > args.max_mib:
        print(f"the pack is larger than --max-mib {args.max_mib:g}: it will not travel", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

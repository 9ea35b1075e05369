"""Device-side batches (training.torch_batch) against the numpy/OpenCV reference
(training.dataset), the pack that carries them to a lent machine, and train_accel's loop
end to end on the CPU. Synthetic crops and a synthetic label basis: no ../shared needed."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from engine.bundle import load_bundle
from engine.crop import CropTransform
from training import train_accel
from training.dataset import AUGMENTATIONS, Augmentation, LabelBasis, make_batch, random_similarity
from training.evaluate import DevSet
from training.pack import load_pack, save_pack
from training.torch_batch import TorchBatcher

SIZE = 64  # output side of the synthetic label basis (ResFCN needs a multiple of 32)
LABEL_TOL_PX = 1e-3  # float32 label arithmetic, two orders of summation
GREY_TOL = 1.0  # grid_sample vs OpenCV's fixed-point bilinear warp, then both rounded to integers
ROTATED_MEAN_GREY = 0.3  # mean |difference| under a rotated warp, crop borders included (measured ≈0.08)
WEBP_MIN_PSNR_DB = 30.0  # the pack's lossy crops (≈35 dB on real faces at quality 75)
STILL = Augmentation(0.0, (1.0, 1.0), 0.0, (1.0, 1.0), 0.0)  # only the mirror flip is random


def synthetic_basis(size: int = SIZE, seed: int = 0) -> LabelBasis:
    """A left/right symmetric disc of labelled pixels with a random linear basis: a face-sized mean
    (120-crop frame, y up) plus 50 small modes, as build_label_basis lays them out."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[:size, :size]
    disc = (r - (size - 1) / 2) ** 2 + (c - (size - 1) / 2) ** 2 < (0.4 * size) ** 2
    weights = np.where(disc, 3.0, 0.0).astype(np.float32)
    pixels = np.flatnonzero(disc)
    pr, pc = np.divmod(pixels, size)
    mean = np.stack([20 + pc * 80 / size, 100 - pr * 80 / size, 10 + rng.uniform(0, 30, len(pixels))], 1)
    modes = rng.normal(0, 2.0, (len(pixels), 3, 50))
    basis = np.concatenate([mean[:, :, None], modes], 2).reshape(-1, 51).astype(np.float32)
    return LabelBasis(size=size, pixels=pixels, basis=basis, weights=weights)


def synthetic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 120, 120, 3) smooth random crops and (n, 62) parameters near a unit similarity."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 12, 12, 3)).astype(np.uint8)
    crops = np.stack([cv2.resize(s, (120, 120), interpolation=cv2.INTER_CUBIC) for s in small])
    params = np.zeros((n, 62), np.float32)
    for i in range(n):
        th = rng.uniform(-0.2, 0.2)
        rot = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
        params[i, :12] = np.concatenate([rot * rng.uniform(0.9, 1.1), rng.normal(0, 3, (3, 1))], 1).ravel()
    params[:, 12:] = rng.normal(0, 0.3, (n, 50))
    return crops, params


@pytest.fixture(scope="module")
def data():
    crops, params = synthetic_data(24)
    lb = synthetic_basis()
    return crops, params, lb, TorchBatcher(crops, params, lb, "cpu", seed=7)


def test_plain_batch_matches_the_numpy_reference(data):
    crops, params, lb, tb = data
    images, targets = tb.batch(torch.arange(len(crops)), None)
    ref_images, ref_targets = make_batch(crops, params, lb, np.random.default_rng(0), augment=None)
    assert images.shape == (len(crops), 3, SIZE, SIZE) and targets.shape == (len(crops), SIZE, SIZE, 3)
    assert np.abs(images.permute(0, 2, 3, 1).numpy() - ref_images).max() <= GREY_TOL
    assert np.abs(targets.numpy() - ref_targets).max() < LABEL_TOL_PX


def test_augmented_warp_and_labels_match_opencv_under_the_same_similarity(data):
    crops, params, lb, tb = data
    rng = np.random.default_rng(3)
    drawn = [random_similarity(rng, SIZE, AUGMENTATIONS["paper"]) for _ in crops]
    m = torch.tensor(np.array([d[0] for d in drawn]), dtype=torch.float32)
    k = torch.tensor([d[1] for d in drawn], dtype=torch.float32)
    idx = torch.arange(len(crops))
    warped = tb.warp(idx, m).permute(0, 2, 3, 1).numpy()
    ref = np.stack([cv2.warpAffine(c, d[0], (SIZE, SIZE), flags=cv2.INTER_LINEAR) for c, d in zip(crops, drawn)])
    diff = np.abs(warped - ref)
    assert diff.mean() < ROTATED_MEAN_GREY
    # away from the crop's border both bilinear reads agree to the rounding
    inside = np.stack([cv2.warpAffine(np.full((120, 120), 255, np.uint8), d[0], (SIZE, SIZE)) for d in drawn])
    inside = cv2.erode(inside.transpose(1, 2, 0), np.ones((3, 3))).transpose(2, 0, 1) == 255
    assert diff[inside].max() <= GREY_TOL
    targets = tb.targets(idx, m, k).numpy().reshape(len(crops), -1, 3)
    _, plain = make_batch(crops, params, lb, np.random.default_rng(0), augment=None)  # resize of 120 → SIZE
    base = SIZE / 120
    for i, (mi, ki) in enumerate(drawn):
        v = plain[i].reshape(-1, 3)[lb.pixels]
        xy = ((v[:, :2] + 0.5) / base - 0.5) @ mi[:, :2].T + mi[:, 2]  # back to 120-crop px, then the affine
        z = (v[:, 2] / base) * ki
        assert np.abs(targets[i, lb.pixels, :2] - xy).max() < LABEL_TOL_PX * 10
        assert np.abs(targets[i, lb.pixels, 2] - (z - z.min())).max() < LABEL_TOL_PX * 10


def test_flips_mirror_images_and_labels_together(data):
    crops, params, lb, tb = data
    idx = torch.arange(len(crops))
    plain_img, plain_tgt = tb.batch(idx, None)
    img, tgt = tb.batch(idx, STILL)
    mirrored_tgt = plain_tgt.flip(2)
    mirrored_tgt[..., 0] = torch.where(torch.from_numpy(lb.weights > 0), (SIZE - 1) - mirrored_tgt[..., 0], 0.0)
    kinds = []
    for i in range(len(crops)):
        # the still similarity is computed, not the resize's constants: float32 rounding may move
        # a grey level by one
        if (img[i] - plain_img[i]).abs().max() <= GREY_TOL and torch.allclose(tgt[i], plain_tgt[i], atol=LABEL_TOL_PX):
            kinds.append("plain")
        else:
            assert (img[i] - plain_img[i].flip(2)).abs().max() <= GREY_TOL
            assert torch.allclose(tgt[i], mirrored_tgt[i], atol=LABEL_TOL_PX)
            kinds.append("mirrored")
    assert set(kinds) == {"plain", "mirrored"}  # 24 draws at p = ½


def test_occluders_paint_one_colour_patch_of_the_configured_size(data):
    crops, _, _, tb = data
    always = Augmentation(0.0, (1.0, 1.0), 0.0, (1.0, 1.0), 1.0)
    idx = torch.arange(len(crops))
    plain, _ = tb.batch(idx, None)
    img, _ = tb.batch(idx, always)
    for i in range(len(crops)):
        # either orientation; a grey level of rounding apart from the occluder
        changed = ((img[i] - plain[i]).abs() > GREY_TOL) & ((img[i] - plain[i].flip(2)).abs() > GREY_TOL)
        mask = changed.any(0)
        assert mask.any()
        colours = img[i][:, mask].T.unique(dim=0)
        assert len(colours) == 1
        assert mask.float().mean() < 0.4**2 * 1.01  # at most the largest rectangle


def test_similarities_stay_inside_their_augmentation(data):
    *_, tb = data
    aug = AUGMENTATIONS["mild"]
    m, k = tb.similarities(4000, aug)
    base = SIZE / 120
    a = m[:, :, :2]
    scale = torch.sqrt(torch.linalg.det(a)) / base
    angle = torch.rad2deg(torch.atan2(a[:, 1, 0], a[:, 0, 0]))
    centre = torch.full((2,), 59.5)
    shift = (m[:, :, 2] + a @ centre - (SIZE - 1) / 2) / SIZE
    assert torch.allclose(scale, k / base, atol=1e-5)
    for values, lo, hi in ((scale, *aug.scale_range), (angle, -aug.rotation_deg, aug.rotation_deg)):
        assert values.min() >= lo - 1e-4 and values.max() <= hi + 1e-4
        assert values.max() - values.min() > 0.9 * (hi - lo)
    assert shift.abs().max() <= aug.shift_fraction + 1e-5
    assert shift.abs().max() > 0.9 * aug.shift_fraction


def test_the_same_seed_gives_the_same_batch(data):
    crops, params, lb, _ = data
    idx = torch.arange(8)
    a = TorchBatcher(crops, params, lb, "cpu", seed=11).batch(idx, AUGMENTATIONS["paper"])
    b = TorchBatcher(crops, params, lb, "cpu", seed=11).batch(idx, AUGMENTATIONS["paper"])
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_batcher_rejects_mismatched_inputs(data):
    crops, params, lb, _ = data
    with pytest.raises(ValueError, match="crops"):
        TorchBatcher(crops[:, :100], params, lb, "cpu", seed=0)
    with pytest.raises(ValueError, match="crops"):
        TorchBatcher(crops, params[:3], lb, "cpu", seed=0)


def synthetic_dev(n: int, size: int = SIZE) -> DevSet:
    rng = np.random.default_rng(5)
    crops, _ = synthetic_data(n, seed=9)
    crops = np.stack([cv2.resize(c, (size, size)) for c in crops])
    transforms = [CropTransform(left=float(x), top=20.0, scale=0.5, size=size) for x in rng.uniform(0, 50, n)]
    gt = rng.uniform(40, 120, (n, 68, 3))
    return DevSet(
        [f"image{i:05d}.jpg" for i in range(n)], crops, transforms, gt, np.array([10.0, 45.0, 80.0] * (n // 3))
    )


def test_pack_round_trip(tmp_path, data):
    crops, params, lb, _ = data
    dev = synthetic_dev(6)
    yaw = np.linspace(-90, 90, len(crops))
    save_pack(tmp_path, crops_rgb=crops, params=params, yaw=yaw, lb=lb, dev=dev)
    pack = load_pack(tmp_path)
    assert np.array_equal(pack.params, params) and np.allclose(pack.yaw, yaw)
    assert np.array_equal(pack.label_basis.basis, lb.basis) and np.array_equal(pack.label_basis.pixels, lb.pixels)
    mse = np.mean((pack.crops_rgb.astype(float) - crops) ** 2)
    assert 10 * np.log10(255**2 / mse) > WEBP_MIN_PSNR_DB
    assert pack.dev.names == dev.names and np.array_equal(pack.dev.gt, dev.gt)
    assert pack.dev.transforms == dev.transforms
    with pytest.raises(ValueError, match="dev crops"):
        save_pack(tmp_path / "bad", crops_rgb=crops, params=params, yaw=yaw, lb=lb, dev=synthetic_dev(3, 32))


def test_train_accel_runs_its_schedule_and_assembles_into_a_bundle(tmp_path, data, monkeypatch):
    """The whole lent-machine loop on the CPU: schedule sized from timed steps (capped, so the test
    does not depend on this machine's speed), evaluations, halves written and joined into a bundle
    whose network is the saved weight average."""
    crops, params, lb, _ = data
    save_pack(
        tmp_path / "pack",
        crops_rgb=crops,
        params=params,
        yaw=np.linspace(-90, 90, len(crops)),
        lb=lb,
        dev=synthetic_dev(6),
    )
    monkeypatch.setattr(train_accel, "SPEED_STEPS", (2, 6))
    out = tmp_path / "out"
    args = [
        "--pack",
        str(tmp_path / "pack"),
        "--out",
        str(out),
        "--minutes",
        "5",
        "--max-steps",
        "12",
        "--device",
        "cpu",
        "--width",
        "0.25",
        "--batch",
        "4",
        "--evals",
        "2",
        "--max-part-mib",
        "0.25",
    ]
    assert train_accel.main(args) == 0
    records = [json.loads(line) for line in (out / train_accel.LOG).read_text().splitlines()]
    assert records[0]["config"]["batch"] == 4
    evals = records[1:]
    assert [e["step"] for e in evals] == [6, 12] and evals[-1]["total"] == 12
    assert np.isfinite(evals[-1]["nme_2d"]["balanced"]) and "flip_average" in evals[-1]
    parts = [torch.load(p, weights_only=True) for p in train_accel.part_files(out)]
    tensor_mib = [sum(v.numel() * v.element_size() for v in part.values()) / 2**20 for part in parts]
    assert len(parts) >= 2 and all(mib <= 0.25 or len(part) == 1 for mib, part in zip(tensor_mib, parts))
    train_accel.main(["assemble", str(out), "--bundle-out", str(tmp_path / "bundle")])
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.metadata["training"]["steps"] == evals[-1]["step"]
    saved = {}
    for part in parts:
        saved.update(part)
    built = bundle.build_model("cpu").state_dict()
    assert set(built) == set(saved)
    assert all(torch.equal(built[k].float(), saved[k].float()) for k in saved)

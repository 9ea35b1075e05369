"""Training-side checks: the label pipeline against the dev set, label maps in the right frame,
and the CPU training loop's scheduling helpers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.layout import default_layout
from engine.model import PositionMapNet
from engine.readout import W_LANDMARK, output_weights
from training.dataset import AUGMENTATIONS, random_similarity
from training.train import (
    WARMUP_STEPS,
    ThreadTuner,
    at_input_size,
    landmark_weighted,
    lr_at,
    training_memory_format,
    training_precision,
)

TEACHER_BALANCED = (3.80, 0.07)  # %: the measured teacher figure and our tolerance (we get 3.74)
TEACHER_BINS = ((2.92, 0.05), (3.60, 0.05))  # the [0,30] and (30,60] bins match to 0.01
REFINED_MAX = 3.0  # %: refined labels (measured 2.52; 2.55 from the one-pass teacher, 2.84 without the ears)
FLIP_AVERAGE_GAIN = 0.05  # %: the flip-averaged teacher must beat its one pass by this on dev (measured 0.09)
LABEL_LANDMARK_MEAN_PX = 0.2  # label-map read-out vs teacher keypoint vertices, 128 px crop (measured 0.10)
LABEL_LANDMARK_MAX_PX = 3.0  # inner lips sit on the mouth hole: 128² sampling costs them ≈1 px (max 2.7)


def test_label_record_round_trips_and_old_caches_have_none(tmp_path):
    from training.labels import LABEL_RECORD, read_label_record, write_label_record

    assert read_label_record(tmp_path) is None  # a cache from before the record
    record = {"teacher_flip": True, "prior_weights": {"shape": 1.0, "expression": 16.0}, "left_out": 76}
    write_label_record(tmp_path, record)
    assert read_label_record(tmp_path) == record
    (tmp_path / LABEL_RECORD).write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_label_record(tmp_path)


def test_lr_schedule_warms_up_then_decays():
    total = 10_000
    lrs = [lr_at(s, total) for s in range(0, total, 50)]
    peak = int(np.argmax(lrs))
    assert peak * 50 <= WARMUP_STEPS + 50
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    assert lrs[-1] < 0.05 * max(lrs)


def test_landmark_weight_changes_only_the_landmark_pixels():
    w = output_weights(default_layout(), 128)
    out = landmark_weighted(w, 64.0)
    is_landmark = w == W_LANDMARK
    assert is_landmark.sum() >= 68 * 3  # 2×2 read-out pixels per landmark, a few outside the mask
    assert np.all(out[is_landmark] == 64.0)
    assert np.array_equal(out[~is_landmark], w[~is_landmark])
    share = out[is_landmark].sum() / out.sum()
    assert 0.25 < share < 0.40  # the paper's 16 gives them ≈ 11 % at 128²
    assert np.array_equal(landmark_weighted(w, W_LANDMARK), w)
    with pytest.raises(ValueError, match="landmark weight"):
        landmark_weighted(w, 0.0)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_random_similarity_stays_inside_its_augmentation(name):
    """Rotation, scale, stretch and shift read back from the drawn matrices (k · R · diag(stretch, 1))
    stay inside the named ranges and fill a good part of them; no augmentation is the
    pixel-centre-exact resize 120 → 128."""
    aug, size = AUGMENTATIONS[name], 128
    rng = np.random.default_rng(0)
    base = size / 120
    angles, scales, stretches, shifts = [], [], [], []
    for _ in range(400):
        m, k = random_similarity(rng, size, aug)
        x_axis, y_axis = m[:, 0], m[:, 1]  # k · stretch · (cos, sin), k · (−sin, cos)
        assert float(x_axis @ y_axis) == pytest.approx(0.0, abs=1e-12)
        scale = float(np.linalg.norm(y_axis))
        assert scale == pytest.approx(k)
        angles.append(np.degrees(np.arctan2(-y_axis[0], y_axis[1])))
        scales.append(scale / base)
        stretches.append(float(np.linalg.norm(x_axis)) / scale)
        centre = m[:, :2] @ np.full(2, 119 / 2) + m[:, 2]  # where the crop centre lands
        shifts.append((centre - (size - 1) / 2) / size)
    angles, scales, shifts = np.abs(angles), np.asarray(scales), np.abs(shifts)
    assert angles.max() <= aug.rotation_deg and angles.max() > 0.9 * aug.rotation_deg
    assert aug.scale_range[0] <= scales.min() and scales.max() <= aug.scale_range[1]
    lo, hi = aug.stretch_range
    assert lo - 1e-12 <= min(stretches) and max(stretches) <= hi + 1e-12
    assert max(stretches) - min(stretches) >= 0.9 * (hi - lo)
    assert shifts.max() <= aug.shift_fraction and shifts.max() > 0.9 * aug.shift_fraction
    m, k = random_similarity(rng, size, None)
    np.testing.assert_allclose(m, [[base, 0, 0.5 * base - 0.5], [0, base, 0.5 * base - 0.5]])


def test_augmentations_narrow_in_order():
    ordered = [AUGMENTATIONS[k] for k in ("paper", "mild", "light", "narrow")]
    for wide, narrow in zip(ordered, ordered[1:]):
        assert narrow.rotation_deg < wide.rotation_deg and narrow.shift_fraction < wide.shift_fraction
        assert wide.scale_range[0] <= narrow.scale_range[0] and narrow.scale_range[1] <= wide.scale_range[1]
        assert narrow.occluder_prob < wide.occluder_prob


def test_thread_tuner_picks_the_faster_setting():
    tuner = ThreadTuner(2)
    fake = {1: 0.4, 2: 2.5}  # contended machine: two threads are slower
    step = 0
    while step < ThreadTuner.PROBE_STEPS * 2 + 1:
        tuner.before_step(step)
        tuner.after_step(step, fake[tuner.current])
        step += 1
    assert tuner.current == 1


def test_thread_tuner_can_start_inside_a_probe_window():
    tuner = ThreadTuner(2)
    for step in range(3, ThreadTuner.RETUNE_EVERY):  # as when --resume lands at step 3
        tuner.before_step(step)
        tuner.after_step(step, 0.1 if tuner.current == 2 else 0.3)
    assert tuner.current == 2


def test_a_network_moved_to_another_input_size_keeps_every_weight():
    torch.manual_seed(0)
    small = PositionMapNet(input_size=64, width=0.125, output_kind="mean_residual", output_scale=0.5).eval()
    small.mean_map.uniform_(0, 64)
    big = at_input_size(small, 96)
    assert big.input_size == 96 and not big.training and big.mean_map.shape == (1, 3, 96, 96)
    assert float(big.mean_map.abs().max()) == 0.0  # the caller fills it at the new size
    old, new = small.state_dict(), big.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old if k != "mean_map")
    with torch.no_grad():
        assert big(torch.rand(1, 3, 96, 96)).shape == (1, 3, 96, 96)


def test_training_precision_and_memory_format_follow_the_cpu():
    intel = "flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
    amd = "flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"
    ice_lake = "flags\t\t: fpu avx512f avx512_vnni\n"
    assert training_precision(intel) == training_precision(amd) == torch.bfloat16
    assert training_precision(ice_lake) is None and training_precision("") is None
    assert training_memory_format(intel) == torch.channels_last
    assert training_memory_format(amd) == torch.contiguous_format
    assert training_memory_format(ice_lake) == training_memory_format("") == torch.channels_last


@pytest.fixture(scope="module")
def label_eval(shared_data):
    from training.teacher_eval import evaluate_labels

    return evaluate_labels(shared_data / "aflw2000_dev", shared_data / "teacher")


def test_teacher_reproduces_its_published_figure(label_eval):
    t = label_eval["teacher"]
    assert abs(t["balanced"] - TEACHER_BALANCED[0]) <= TEACHER_BALANCED[1]
    for key, (want, tol) in zip(("0-30", "30-60"), TEACHER_BINS):
        assert abs(t[key] - want) <= tol


def test_flip_averaged_teacher_beats_its_one_pass(label_eval):
    assert label_eval["teacher_flip"]["balanced"] < label_eval["teacher"]["balanced"] - FLIP_AVERAGE_GAIN


def test_refined_labels_beat_the_teacher(label_eval):
    assert label_eval["refined"]["balanced"] < REFINED_MAX


def test_label_maps_put_landmarks_on_the_teacher_keypoints(shared_data):
    from engine.layout import default_layout
    from engine.readout import Readout
    from training.bfm import load_basis, load_topology
    from training.dataset import build_label_basis, make_batch
    from training.teacher import Teacher, vertices_crop_px

    layout, topo, basis = default_layout(), load_topology(shared_data / "teacher"), load_basis()
    lb = build_label_basis(topo, basis, layout, 128)
    rng = np.random.default_rng(0)
    params = np.load(shared_data / "aflw_train" / "pts21.npy", mmap_mode="r")  # only to check presence
    del params

    names = (shared_data / "aflw_train" / "list.txt").read_text().split()[:16]
    crops = np.stack([cv2.imread(str(shared_data / "aflw_train" / "crops" / n)) for n in names])
    p = Teacher(shared_data / "teacher")(crops)
    _, maps = make_batch(crops[..., ::-1].copy(), p, lb, rng, augment=None)
    kp_maps = np.stack([Readout.build(layout, 128).keypoints(m) for m in maps])
    kp_teacher = vertices_crop_px(p, basis, topo.keypoints)[..., :2]
    expected = (kp_teacher + 0.5) * 128 / 120 - 0.5  # pixel-centre exact 120 → 128 resize
    err = np.linalg.norm(kp_maps[..., :2] - expected, axis=-1)
    assert err.mean() < LABEL_LANDMARK_MEAN_PX and err.max() < LABEL_LANDMARK_MAX_PX


UNSTRETCHED = sorted(n for n, a in AUGMENTATIONS.items() if a.stretch_range[0] == a.stretch_range[1])


@pytest.mark.parametrize("name", UNSTRETCHED)
def test_a_preset_without_stretch_draws_what_it_drew_before_the_stretch(name):
    """Rotation, scale and a 2D shift: four numbers per crop, so seeded runs made before the stretch
    existed draw the same crops again."""
    rng, before = np.random.default_rng(3), np.random.default_rng(3)
    random_similarity(rng, 128, AUGMENTATIONS[name])
    before.random(4)
    assert rng.random() == before.random()


def test_stretched_crops_get_labels_stretched_in_x_alone(shared_data):
    """A stretch-only augmentation widens the label's landmark box by the stretch in x and leaves
    its height and depth extent as the plain resize gives them (flips do not change extents)."""
    from engine.layout import default_layout
    from engine.readout import Readout
    from training.bfm import load_basis, load_topology
    from training.dataset import Augmentation, build_label_basis, make_batch
    from training.teacher import Teacher

    layout, topo, basis = default_layout(), load_topology(shared_data / "teacher"), load_basis()
    lb = build_label_basis(topo, basis, layout, 128)
    names = (shared_data / "aflw_train" / "list.txt").read_text().split()[:8]
    crops = np.stack([cv2.imread(str(shared_data / "aflw_train" / "crops" / n)) for n in names])
    p = Teacher(shared_data / "teacher")(crops)
    rgb = crops[..., ::-1].copy()
    stretch = 1.08
    only_stretch = Augmentation(0.0, (1.0, 1.0), 0.0, (1.0, 1.0), 0.0, (stretch, stretch))
    assert Augmentation(0.0, (1.0, 1.0), 0.0, (1.0, 1.0), 0.0).stretch_range == (1.0, 1.0)  # off by default
    readout = Readout.build(layout, 128)

    def extents(augment):
        _, maps = make_batch(rgb, p, lb, np.random.default_rng(0), augment=augment)
        kp = np.stack([readout.keypoints(m) for m in maps])
        return kp.max(axis=1) - kp.min(axis=1)  # (B, 3) landmark box in x, y, z

    plain, stretched = extents(None), extents(only_stretch)
    np.testing.assert_allclose(stretched[:, 0], stretch * plain[:, 0], rtol=1e-3)
    np.testing.assert_allclose(stretched[:, 1:], plain[:, 1:], rtol=1e-3)


@pytest.fixture(scope="module")
def ear_fits(shared_data):
    """Teacher fits of training crops whose two ear points are both annotated, refined with the
    ears, without them, and with the ears on but their annotations removed."""
    from training.bfm import load_basis, load_topology
    from training.labels import human_points_crop
    from training.refine import EAR_VERTICES, refine_params
    from training.teacher import Teacher, load_param_stats

    train = shared_data / "aflw_train"
    pts = human_points_crop(np.load(train / "pts21.npy"), np.load(train / "roi_box.npy"))
    both = np.flatnonzero(~np.isnan(pts[:, list(EAR_VERTICES)]).any(axis=(1, 2)))[:EAR_TEST_CROPS]
    names = np.asarray((train / "list.txt").read_text().split())[both]
    crops = np.stack([cv2.imread(str(train / "crops" / n)) for n in names])
    topo, basis = load_topology(shared_data / "teacher"), load_basis()
    std = load_param_stats(shared_data / "teacher")[1]
    p0, human = Teacher(shared_data / "teacher")(crops), pts[both]
    no_ear_points = human.copy()
    no_ear_points[:, list(EAR_VERTICES)] = np.nan
    moved_ears = human.copy()
    moved_ears[:, list(EAR_VERTICES)] += 20.0
    fit = lambda h, **kw: refine_params(p0, h, basis, topo.keypoints, std, **kw)  # noqa: E731
    return {
        "human": human,
        "p0": p0,
        "std": std,
        "fit": fit,
        "basis": basis,
        "keypoints": topo.keypoints,
        "with_ears": fit(human),
        "without": fit(human, ear_sigma=None),
        "without_moved": fit(moved_ears, ear_sigma=None),
        "ears_unannotated": fit(no_ear_points),
    }


EAR_TEST_CROPS = 64
EAR_GAIN_MIN_PX = 2.0  # mean ear-vertex distance to the annotated ears drops by this, crop px (5.6 → 2.0)
SAME_FIT_PX = 1e-3  # "the same fit": landmark positions agree to this, crop px (measured: bit-identical)


def test_ear_points_pull_the_ear_vertices_toward_the_annotated_ears(ear_fits):
    from training.refine import EAR_VERTICES
    from training.teacher import vertices_crop_px

    ears = ear_fits["human"][:, list(EAR_VERTICES)]

    def distance(params):
        xy = vertices_crop_px(params, ear_fits["basis"], np.asarray(list(EAR_VERTICES.values())))[..., :2]
        return np.linalg.norm(xy - ears, axis=-1).mean()

    assert distance(ear_fits["with_ears"]) < distance(ear_fits["without"]) - EAR_GAIN_MIN_PX


STIFF_PRIOR = 1e8  # a prior weight that pins its coefficients to the teacher's
PINNED_WHITENED = 1e-3  # "pinned": coefficients move by less than this many standard deviations


def test_shape_and_expression_priors_act_on_their_own_coefficients(ear_fits):
    """A stiff expression prior leaves the teacher's expression and still refines the identity, and
    the other way round: each prior weight reaches its own 40 / 10 coefficients only."""
    from training.teacher import split_params

    fit, p0, std = ear_fits["fit"], ear_fits["p0"], ear_fits["std"]
    shape, expr = 2, 3  # split_params: sR, t, alpha_shp, alpha_exp

    def moved(params, part):
        return np.abs((split_params(params)[part] - split_params(p0)[part]) / split_params(std[None])[part]).max()

    h = ear_fits["human"]
    no_expression = fit(h, expression_prior_weight=STIFF_PRIOR)
    no_shape = fit(h, shape_prior_weight=STIFF_PRIOR)
    assert moved(no_expression, expr) < PINNED_WHITENED < moved(no_expression, shape)
    assert moved(no_shape, shape) < PINNED_WHITENED < moved(no_shape, expr)


def test_without_ear_sigma_the_fit_ignores_the_ear_points(ear_fits):
    """``ear_sigma=None`` is the ear-free fit of runs 1–16: the ear annotations change nothing, and
    it equals the ear fit of images whose ears are not annotated."""
    from training.refine import EAR_VERTICES
    from training.teacher import vertices_crop_px

    np.testing.assert_array_equal(ear_fits["without"], ear_fits["without_moved"])
    ids = np.asarray(list(ear_fits["keypoints"]) + list(EAR_VERTICES.values()))
    a, b = (vertices_crop_px(ear_fits[k], ear_fits["basis"], ids) for k in ("without", "ears_unannotated"))
    assert np.abs(a - b).max() < SAME_FIT_PX

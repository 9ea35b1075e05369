"""engine.prnet_import / prnet_layout / the import-prnet command: the official PRNet checkpoint → our model bundle.

(a) the real official index (../shared/data/prnet_official, or $PRNET_SHARED_DATA/prnet_official)
maps onto ResFCN-256 exactly; (c) a synthetic checkpoint with the official names and random values,
written by tests/engine/tf_checkpoint_writer.py, imports through the CLI into a bundle that loads
strictly and holds every source tensor bit-exactly (kernels transposed), with the uv-data layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from arrays import assert_close
from tf_checkpoint_writer import write_checkpoint

from engine.bundle import load_bundle
from engine.cli import main as cli_main
from engine.errors import WeightsMismatchError
from engine.layout import default_layout
from engine.model import PositionMapNet
from engine.prnet_import.importer import SCOPE, _expected_mapping, is_optimizer_state, map_official_variables
from engine.prnet_import.layout import CANONICAL_MM_PER_UNIT, LAYOUT_ID, load_prnet_layout
from engine.prnet_import.tf_checkpoint import read_index

SHARED = Path(os.environ.get("PRNET_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
OFFICIAL_INDEX = SHARED / "prnet_official" / "256_256_resfcn256_weight.index"
N_TRAINABLE, N_TRAINABLE_PARAMS, N_BATCH_NORMS = 149, 13_353_618, 48  # the data README, read from the index
S = 256
CANONICAL_MM = 1e-4  # float32 round-off of the scaled, centred canonical vertices (values ≲ 100 mm)
CANONICAL_SCALE_REL = 1e-3  # the scale constant is rounded to 4 digits
MIRROR_ON_FACE_MIN = 0.995  # share of face pixels whose mirror pixel is a face pixel
N_OFFICIAL_VERTICES = 43_867  # face pixels of PRNet's published mask


def _our_shapes() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        net = PositionMapNet(input_size=S, width=1.0, output_kind="sigmoid_scale", output_scale=1.1)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


@pytest.mark.skipif(not OFFICIAL_INDEX.is_file(), reason=f"official PRNet index not present at {OFFICIAL_INDEX}")
def test_official_index_maps_onto_resfcn_exactly_once():
    index = read_index(OFFICIAL_INDEX)  # also checks every block's crc32c as TensorFlow wrote it
    model_vars = {n: e for n, e in index.items() if not is_optimizer_state(n)}
    trainable = {n: e for n, e in model_vars.items() if not n.endswith(("moving_mean", "moving_variance"))}
    assert len(trainable) == N_TRAINABLE
    assert sum(int(np.prod(e.shape)) for e in trainable.values()) == N_TRAINABLE_PARAMS
    assert len(model_vars) == N_TRAINABLE + 2 * N_BATCH_NORMS
    assert all(e.dtype == np.float32 for e in model_vars.values())

    mapping = map_official_variables({n: e.shape for n, e in index.items()})
    used = [tf for tf, _ in mapping.values()]
    assert sorted(used) == sorted(model_vars)  # each official variable exactly once
    ours = _our_shapes()
    for key, (tf, kind) in mapping.items():
        shape = index[tf].shape
        expected = (shape[3], shape[2], shape[0], shape[1]) if kind.endswith("kernel") else shape
        assert ours[key] == expected, (key, tf)


@pytest.mark.skipif(not OFFICIAL_INDEX.is_file(), reason=f"PRNet uv-data not present at {OFFICIAL_INDEX.parent}")
def test_official_uv_data_gives_a_consistent_layout():
    lay = load_prnet_layout(OFFICIAL_INDEX.parent)
    assert lay.n_vertices == N_OFFICIAL_VERTICES and lay.size == S
    u, v = np.round(lay.keypoints_uv).astype(int).T
    assert lay.face_mask[v, u].all() and (lay.weight_mask[v, u] == 16).all()
    assert set(np.unique(lay.weight_mask)) == {0.0, 3.0, 4.0, 16.0}
    # pins CANONICAL_MM_PER_UNIT: the scaled PRNet mean face has the size of our BFM mean face (mm)
    ours = default_layout()
    common = np.intersect1d(lay.face_indices, ours.face_indices)
    a = lay.canonical_vertices[np.searchsorted(lay.face_indices, common)].astype(np.float64)
    b = ours.canonical_vertices[np.searchsorted(ours.face_indices, common)].astype(np.float64)
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    assert_close((a * b).sum() / (a * a).sum(), 1.0, CANONICAL_SCALE_REL, "scale PRNet canonical → ours")
    # the mirror map lands on the face for almost every pixel (the published mask is 99.9 % symmetric)
    mu, mv = lay.mirror_uv.astype(int).T
    assert lay.face_mask[mv, mu].mean() > MIRROR_ON_FACE_MIN


def test_mapping_rejects_missing_and_foreign_variables():
    shapes = {tf: None for tf, _ in _expected_mapping(SCOPE).values()}
    ours = _our_shapes()
    for key, (tf, kind) in _expected_mapping(SCOPE).items():
        shapes[tf] = (ours[key][2], ours[key][3], ours[key][1], ours[key][0]) if kind.endswith("kernel") else ours[key]
    map_official_variables(shapes)
    with pytest.raises(WeightsMismatchError, match="no place"):
        map_official_variables({**shapes, f"{SCOPE}/extra/weights": (1,)})
    with pytest.raises(WeightsMismatchError, match="missing"):
        map_official_variables({k: v for k, v in shapes.items() if k != f"{SCOPE}/Conv2d_transpose_16/weights"})
    bad = dict(shapes)
    bad[f"{SCOPE}/Conv/weights"] = (4, 4, 16, 3)
    with pytest.raises(WeightsMismatchError, match="does not fit"):
        map_official_variables(bad)


# ---- end to end ----------------------------------------------------------------------------------


def _fake_uv_data(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PRNet-style uv-data files: an elliptic face, 68 keypoints inside, random canonical vertices."""
    folder.mkdir()
    v, u = np.mgrid[0:S, 0:S]
    mask = ((u - 127.5) / 100) ** 2 + ((v - 130) / 110) ** 2 < 1
    flat = np.flatnonzero(mask.ravel())
    np.savetxt(folder / "face_ind.txt", flat.astype(np.float64))  # PRNet's file holds floats, one a line
    kpt = flat[rng.choice(len(flat), 68, replace=False)]
    uv = np.stack([kpt % S, kpt // S]).astype(np.float64)  # rows: u, v
    np.savetxt(folder / "uv_kpt_ind.txt", uv)
    canonical = rng.normal(size=(len(flat), 3)) * 50 + [0.0, 250.0, 100.0]
    np.save(folder / "canonical_vertices.npy", canonical)
    levels = np.where(mask, 48, 0).astype(np.uint8)
    levels[100:120, 60:200] = 64
    levels[0:5, :] = 255  # outside the face: weight 0 whatever the png says
    levels[140, 100:110] = 117  # an anti-aliased level inside the face
    levels[uv[1].astype(int), uv[0].astype(int)] = 255
    cv2.imwrite(str(folder / "uv_weight_mask.png"), levels)
    return {"mask": mask, "uv": uv, "canonical": canonical, "levels": levels}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("prnet")
    ours = _our_shapes()
    tensors = {}
    for key, (tf, kind) in _expected_mapping(SCOPE).items():
        o = ours[key]
        shape = (o[2], o[3], o[1], o[0]) if kind.endswith("kernel") else o
        tensors[tf] = rng.standard_normal(shape, dtype=np.float32)
        if tf.endswith("moving_variance"):
            tensors[tf] = np.abs(tensors[tf]) + 0.1
    tensors |= {"beta1_power": np.float32(0.9).reshape(()), f"{SCOPE}/Conv/weights/Adam": np.ones(3, np.float32)}
    write_checkpoint(root / "256_256_resfcn256_weight", tensors)
    uv = _fake_uv_data(root / "uv-data", rng)
    out = root / "bundle"
    code = cli_main(
        [
            "import-prnet",
            "--checkpoint",
            str(root / "256_256_resfcn256_weight"),
            "--uv-data",
            str(root / "uv-data"),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    return load_bundle(out), tensors, uv


def test_imported_bundle_holds_every_tensor_exactly(imported):
    bundle, tensors, _ = imported
    assert (bundle.input_size, bundle.width, bundle.output_kind, bundle.output_scale) == (S, 1.0, "sigmoid_scale", 1.1)
    assert "research only" in bundle.metadata["licence"] and "PRNet" in bundle.metadata["source"]
    state = bundle.build_model().state_dict()  # strict load inside
    rng = np.random.default_rng(0)
    for key, (tf, kind) in _expected_mapping(SCOPE).items():
        got, src = state[key].numpy(), tensors[tf]
        if kind == "identity":
            assert np.array_equal(got, src), key
            continue
        # conv: ours[out, in, y, x] = tf[y, x, in, out]; deconv: ours[in, out, y, x] = tf[y, x, out, in]
        for _ in range(20):
            a, b, y, x = (int(rng.integers(n)) for n in got.shape)
            assert got[a, b, y, x] == src[y, x, b, a], (key, a, b, y, x)
        assert np.array_equal(np.sort(got.ravel()), np.sort(src.ravel())), key
    assert all(int(v) == 0 for k, v in state.items() if k.endswith("num_batches_tracked"))


def test_imported_layout_comes_from_the_uv_data(imported):
    bundle, _, uv = imported
    lay = bundle.layout
    assert lay.layout_id == LAYOUT_ID and bundle.metadata["layout_id"] == LAYOUT_ID
    assert np.array_equal(lay.face_mask, uv["mask"])
    assert_close(lay.keypoints_uv, uv["uv"].T, 0.0, "keypoints (u, v)")
    expected = (uv["canonical"] - uv["canonical"].mean(axis=0)) * CANONICAL_MM_PER_UNIT
    assert_close(lay.canonical_vertices, expected, CANONICAL_MM, "canonical vertices, mm")
    w, levels, mask = lay.weight_mask, uv["levels"], uv["mask"]
    assert w[~mask].max() == 0 and w[140, 105] == 3 and w[110, 127] == 4 and w[mask & (levels == 48)].min() == 3
    assert (w[uv["uv"][1].astype(int), uv["uv"][0].astype(int)] == 16).all()
    rows, cols = np.divmod(lay.face_indices, S)
    assert_close(lay.mirror_uv, np.stack([S - 1 - cols, rows], axis=1), 0.0, "mirror uv")
    assert len(lay.triangles) > 0


def test_cli_reports_a_missing_checkpoint(tmp_path, capsys):
    args = ["--checkpoint", str(tmp_path / "nope"), "--uv-data", str(tmp_path), "-o", str(tmp_path / "b")]
    assert cli_main(["import-prnet", *args]) == 1
    assert "not found" in capsys.readouterr().err

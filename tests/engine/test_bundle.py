"""Model bundles: verified before anything runs; every corruption is a named error."""

from __future__ import annotations

import pytest
import torch
from mean_face import edit_bundle_meta

from engine.bundle import load_bundle
from engine.errors import BundleFormatError, NoWeightsError, WeightsMismatchError


def _weights(path):
    return next(path.glob("weights-*.pt"))


def test_round_trip_loads_strictly(mean_face_bundle):
    b = load_bundle(mean_face_bundle)
    model = b.build_model("cpu")
    assert b.input_size == 256 and b.output_kind == "mean_residual"
    assert b.bundle_id.startswith("mean-face-test@") and b.weights_sha256[:12] in _weights(mean_face_bundle).name
    assert not model.training
    assert b.layout.n_vertices == len(b.layout.canonical_vertices)


def test_missing_bundle(tmp_path):
    with pytest.raises(NoWeightsError, match="no model bundle"):
        load_bundle(tmp_path / "nowhere")


def test_corrupt_weights_fail_the_hash(bundle_copy):
    w = _weights(bundle_copy)
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsMismatchError, match="sha256"):
        load_bundle(bundle_copy)


def test_missing_weights_file(bundle_copy):
    _weights(bundle_copy).unlink()
    with pytest.raises(NoWeightsError, match="weights file missing"):
        load_bundle(bundle_copy)


def test_pickled_code_is_never_executed(bundle_copy, tmp_path):
    """A weights file that is a pickle of an arbitrary object is refused by weights_only loading."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    w = _weights(bundle_copy)
    torch.save({"x": Evil()}, w)
    from engine.bundle import sha256_file

    edit_bundle_meta(bundle_copy, lambda meta: meta["files"]["weights"].update(sha256=sha256_file(w)))
    with pytest.raises(WeightsMismatchError, match="corrupt or not a state dict"):
        load_bundle(bundle_copy).build_model()
    assert not marker.exists()


def test_wrong_architecture_is_a_mismatch(bundle_copy):
    edit_bundle_meta(bundle_copy, lambda meta: meta["network"].update(width=0.25))
    with pytest.raises(WeightsMismatchError, match="do not fit"):
        load_bundle(bundle_copy).build_model()


@pytest.mark.parametrize("edit", ["format", "garbage", "kind"])
def test_bad_metadata(bundle_copy, edit):
    meta_path = bundle_copy / "bundle.json"
    if edit == "garbage":
        meta_path.write_text("{not json")
    elif edit == "format":
        edit_bundle_meta(bundle_copy, lambda meta: meta.update(format="something/9"))
    else:
        edit_bundle_meta(bundle_copy, lambda meta: meta["output"].update(kind="magic"))
    with pytest.raises(BundleFormatError):
        load_bundle(bundle_copy)

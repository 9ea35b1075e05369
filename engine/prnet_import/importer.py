"""Import the official PRNet TensorFlow checkpoint (Feng et al., ECCV 2018) into a model bundle.

The official graph (``resfcn256`` in PRNet's ``predictor.py``, TF-slim layers) is exactly our
:class:`engine.network.ResFCN` at input 256, width 1; this module names the correspondence:

==========================================  ===============================================
TensorFlow variable (scope ``resfcn256/``)  our state-dict key (``net.`` + …)
==========================================  ===============================================
``Conv/weights``, ``Conv/BatchNorm/*``      ``stem.0.conv.weight``, ``stem.1.*``
``resBlock{_k}/Conv``, ``Conv_1``           ``encoder.k.conv1`` / ``bn1``, ``conv2`` / ``bn2``
``resBlock{_k}/Conv_2/weights``             ``encoder.k.conv3.conv.weight`` (no BN of its own)
``resBlock{_k}/shortcut/weights``           ``encoder.k.shortcut.conv.weight``
``resBlock{_k}/BatchNorm/*``                ``encoder.k.bn_out.*`` (after the residual sum)
``Conv2d_transpose{_j}/weights``, ``/BN``   ``decoder.j.0.deconv.weight``, ``decoder.j.1.*``
==========================================  ===============================================

Batch norm: ``gamma → weight``, ``beta → bias``, ``moving_mean → running_mean``, ``moving_variance →
running_var``. Kernels: a TF conv kernel ``[h, w, in, out]`` becomes a torch ``Conv2d`` weight
``[out, in, h, w]``; a TF ``conv2d_transpose`` kernel ``[h, w, out, in]`` becomes a torch
``ConvTranspose2d`` weight ``[in, out, h, w]`` — the same axis permutation, and no spatial flip,
because both frameworks define the transposed conv as the adjoint of the same cross-correlation
(checked numerically against TensorFlow, see ``engine/data/PRNET_IMPORT.md``). Optimizer state in
the checkpoint (``*/Adam``, ``*/Adam_1``, ``beta1_power``, ``beta2_power``) is ignored; any other
variable must be mapped exactly once or the import fails.

Output: ``pos = sigmoid · 1.1 · 256`` (PRNet's ``MaxPos``), input RGB / 255.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ..bundle import ModelBundle, save_bundle
from ..errors import WeightsMismatchError
from ..model import PositionMapNet
from ..network import DECODER, ENCODER_BLOCKS, STEM_CHANNELS
from .layout import load_prnet_layout
from .tf_checkpoint import load_checkpoint, read_index

SCOPE = "resfcn256"  # PRNet's variable scope
INPUT_SIZE = 256
OUTPUT_SCALE = 1.1  # PRNet: MaxPos = resolution · 1.1
OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_NAMES = ("beta1_power", "beta2_power")
KERNEL_TO_TORCH = (3, 2, 0, 1)  # [h, w, a, b] → [b, a, h, w] for conv and transposed-conv kernels
BN_PARAMS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
# Transforms from a TF array to our tensor layout, by name (the mapping stays plain data).
TRANSFORMS = {
    "conv_kernel": lambda a: np.transpose(a, KERNEL_TO_TORCH),
    "deconv_kernel": lambda a: np.transpose(a, KERNEL_TO_TORCH),
    "identity": lambda a: a,
}
# Equivalence with TensorFlow, measured once by training/tf_reference_check.py: the official
# graph in TF 2.21 (tf.compat.v1, CPU) with random weights and BN statistics, saved and imported here,
# both run on the same two random 256² inputs. Flipping the transposed-conv kernels instead gives a
# sigmoid difference of 1.0, so "no flip" is the right convention.
TF_CHECK = {
    "tool": "training/tf_reference_check.py",
    "reference": "TensorFlow 2.21.0 CPU, random weights and batch-norm statistics, 2 random inputs",
    "max_abs_diff_sigmoid": 3.9e-05,
    "max_abs_diff_logits": 2.4e-04,  # logits spanned −36 … 72
    "max_abs_diff_position_px": 0.011,
    "max_abs_diff_sigmoid_if_deconv_kernels_flipped": 1.0,
}
METADATA = {
    "source": "PRNet, Feng et al., 'Joint 3D Face Reconstruction and Dense Alignment with Position Map "
    "Regression Network', ECCV 2018; weights 256_256_resfcn256_weight from github.com/YadiraF/PRNet",
    "licence": "research only, as the PRNet README states",
    "input": "RGB crop, values / 255",
    "training_data": "300W-LP (by the PRNet authors)",
}


def _suffixed(base: str, k: int) -> str:
    """TF-slim's unique names: the first layer is ``base``, the next ``base_1``, ``base_2`` …"""
    return base if k == 0 else f"{base}_{k}"


def _expected_mapping(scope: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}

    def conv_bn(key_conv: str, key_bn: str | None, tf: str, kind: str) -> None:
        out[f"net.{key_conv}.weight"] = (f"{scope}/{tf}/weights", kind)
        if key_bn is not None:
            for ours, theirs in BN_PARAMS.items():
                out[f"net.{key_bn}.{ours}"] = (f"{scope}/{tf}/BatchNorm/{theirs}", "identity")

    conv_bn("stem.0.conv", "stem.1", "Conv", "conv_kernel")
    cin = STEM_CHANNELS
    for k, (cout, stride) in enumerate(ENCODER_BLOCKS):
        block = _suffixed("resBlock", k)
        conv_bn(f"encoder.{k}.conv1.conv", f"encoder.{k}.bn1", f"{block}/Conv", "conv_kernel")
        conv_bn(f"encoder.{k}.conv2.conv", f"encoder.{k}.bn2", f"{block}/Conv_1", "conv_kernel")
        conv_bn(f"encoder.{k}.conv3.conv", None, f"{block}/Conv_2", "conv_kernel")
        if stride != 1 or cin != cout:
            conv_bn(f"encoder.{k}.shortcut.conv", None, f"{block}/shortcut", "conv_kernel")
        for ours, theirs in BN_PARAMS.items():
            out[f"net.encoder.{k}.bn_out.{ours}"] = (f"{scope}/{block}/BatchNorm/{theirs}", "identity")
        cin = cout
    for j in range(len(DECODER)):
        conv_bn(f"decoder.{j}.0.deconv", f"decoder.{j}.1", _suffixed("Conv2d_transpose", j), "deconv_kernel")
    return out


def _build_model() -> PositionMapNet:
    return PositionMapNet(input_size=INPUT_SIZE, width=1.0, output_kind="sigmoid_scale", output_scale=OUTPUT_SCALE)


def is_optimizer_state(name: str) -> bool:
    return name in OPTIMIZER_NAMES or name.endswith(OPTIMIZER_SUFFIXES)


def map_official_variables(
    names_and_shapes: dict[str, tuple[int, ...]] | Iterable[tuple[str, tuple[int, ...]]], *, scope: str = SCOPE
) -> dict[str, tuple[str, str]]:
    """Our state-dict key → (TF variable name, transform name in :data:`TRANSFORMS`).

    Checks that every non-optimizer variable of the checkpoint is used exactly once, that every
    parameter and BN statistic of our network gets one, and that shapes agree after the transform;
    raises :class:`WeightsMismatchError` naming the offending variables otherwise.
    """
    given = dict(names_and_shapes.items() if isinstance(names_and_shapes, dict) else names_and_shapes)
    mapping = _expected_mapping(scope)
    with torch.device("meta"):  # shapes only, no memory
        state = _build_model().state_dict()
    ours = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    used = [tf for tf, _ in mapping.values()]
    problems = []
    if len(set(used)) != len(used):
        problems.append("a TF variable is mapped twice")
    if set(mapping) != set(ours):
        problems.append(f"mapping does not cover our keys: {sorted(set(ours) ^ set(mapping))[:5]}")
    missing = [tf for tf in used if tf not in given]
    if missing:
        problems.append(f"{len(missing)} variables missing from the checkpoint, e.g. {missing[:3]}")
    unused = sorted(n for n in given if not is_optimizer_state(n) and n not in set(used))
    if unused:
        problems.append(f"{len(unused)} checkpoint variables have no place in ResFCN, e.g. {unused[:3]}")
    for key, (tf, kind) in mapping.items():
        if tf in given and key in ours:
            shape = tuple(given[tf])
            got = tuple(shape[i] for i in KERNEL_TO_TORCH) if kind != "identity" and len(shape) == 4 else shape
            if got != ours[key]:
                problems.append(f"{tf} {tuple(given[tf])} does not fit {key} {ours[key]}")
    if problems:
        raise WeightsMismatchError("official PRNet checkpoint does not match ResFCN-256: " + "; ".join(problems))
    return mapping


def official_state_dict(checkpoint_prefix: str | Path) -> dict[str, torch.Tensor]:
    """Read the checkpoint and return the full state dict of :class:`PositionMapNet` (float32)."""
    index = read_index(f"{checkpoint_prefix}.index")
    mapping = map_official_variables({n: e.shape for n, e in index.items()})
    arrays = load_checkpoint(checkpoint_prefix, names={tf for tf, _ in mapping.values()})
    state = {
        key: torch.from_numpy(np.ascontiguousarray(TRANSFORMS[kind](arrays[tf]), dtype=np.float32))
        for key, (tf, kind) in mapping.items()
    }
    with torch.device("meta"):
        keys = list(_build_model().state_dict())
    for key in keys:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
    return state


def import_prnet(
    checkpoint_prefix: str | Path,
    uv_data_dir: str | Path,
    out_dir: str | Path,
    *,
    name: str = "prnet-official",
    half: bool = False,
) -> ModelBundle:
    """Official checkpoint + PRNet uv-data folder → a bundle folder at ``out_dir``.

    Weights are kept in float32 by default (the bundle then reproduces TensorFlow to float round-off).
    """
    model = _build_model()
    model.load_state_dict(official_state_dict(checkpoint_prefix), strict=True)
    layout = load_prnet_layout(uv_data_dir)
    metadata = {
        **METADATA,
        "tf_equivalence": TF_CHECK,
        "converted_from": {"checkpoint": Path(checkpoint_prefix).name, "uv_data": "PRNet Data/uv-data"},
    }
    return save_bundle(out_dir, name=name, model=model, layout=layout, metadata=metadata, half=half)

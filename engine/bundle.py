"""Model bundles: weights + UV layout + metadata, verified before anything is executed.

A bundle is a folder::

    bundle.json                 metadata (format, network, output parameterisation, layout, provenance,
                                optional "inference": {"flip_average": true, "shift_average": true,
                                "crop_zoom": 1.05} — the model's default inference: mirror averaging,
                                shifted-crop averaging of the final maps (engine.api), and how much
                                tighter than the 3DDFA roi its crop is (engine.crop))
    weights-<sha256[:12]>.pt    a plain state dict (tensors only; fp16 allowed, cast up on load)
    layout.npz                  the UV layout (engine.layout), the mesh the model's maps are read into
    landmark_model.npz          optional: the shape model that regularises the 68 landmarks (with
                                points read from the output map too; engine.shape_model), added by
                                ``training.landmark_model``

Loading = read JSON → check the sha256 of the weights, layout (and landmark model) files against the JSON →
``torch.load(weights_only=True)`` (no pickled code can run) → strict ``load_state_dict`` into the
network the metadata describes. Any mismatch raises a named error (``WeightsMismatchError``,
``NoWeightsError``, ``BundleFormatError``) and nothing is half-loaded.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .atomic_write import write_files_atomically
from .errors import BundleFormatError, NoWeightsError, WeightsMismatchError
from .layout import UVLayout, load_layout
from .model import ARCHITECTURES, OUTPUT_KINDS, PositionMapNet
from .shape_model import LandmarkShapeModel, load_landmark_model

FORMAT = "prnet_blender.bundle/1"
META_FILE = "bundle.json"
LAYOUT_FILE = "layout.npz"
LANDMARK_MODEL_FILE = "landmark_model.npz"
DEFAULT_BUNDLE_DIR = "default"  # weights/default inside the repo, engine/_weights/default when vendored
FAST_BUNDLE_DIR = "fast"  # the fast model (LightFCN; quality "fast"): weights/fast, engine/_weights/fast
KEEP_FP32 = ("mean_map",)  # fp16 spacing is 0.125 px at 128–256 px: keep absolute positions in fp32


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class ModelBundle:
    path: Path
    name: str
    input_size: int  # S: the network's input and output side, px
    width: float  # the network's channel multiplier
    output_kind: str  # see engine.model
    output_scale: float
    layout: UVLayout
    weights_file: Path
    weights_sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)  # provenance, metrics, licence
    flip_average: bool = False  # the model's default inference: average with its mirrored crop
    shift_average: bool = False  # ... and average each face's final map with shifted crops' (engine.api)
    crop_zoom: float = 1.0  # crop side = roi side / crop_zoom (engine.crop.CropTransform.from_roi)
    landmark_model: LandmarkShapeModel | None = None  # regularises the 68 landmarks (engine.shape_model)
    arch: str = "ResFCN"  # the network (engine.model.ARCHITECTURES)

    @property
    def bundle_id(self) -> str:
        """Name plus weights hash prefix: identifies exactly which model produced a result."""
        return f"{self.name}@{self.weights_sha256[:12]}"

    def build_model(self, device: str | torch.device = "cpu") -> PositionMapNet:
        """Network with the verified weights, in eval mode, channels_last, on ``device``."""
        model = PositionMapNet(
            input_size=self.input_size,
            width=self.width,
            output_kind=self.output_kind,
            output_scale=self.output_scale,
            arch=self.arch,
        )
        state = _load_state(self.weights_file)
        try:
            model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except RuntimeError as exc:
            raise WeightsMismatchError(
                f"weights {self.weights_file} do not fit the network in {self.path}: {exc}"
            ) from exc
        return model.eval().to(device=device, memory_format=torch.channels_last)


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise WeightsMismatchError(f"weights file {path} is corrupt or not a state dict: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatchError(f"weights file {path} does not hold a plain state dict of tensors")
    return state


def _check_hash(path: Path, expected: str, what: str) -> None:
    if not path.is_file():
        raise NoWeightsError(f"{what} file missing: {path}")
    got = sha256_file(path)
    if got != expected:
        raise WeightsMismatchError(
            f"{what} file {path} fails its sha256 check (expected {expected[:12]}…, got {got[:12]}…)"
        )


def _inference_switch(inference: dict[str, Any], key: str, meta_path: Path) -> bool:
    """An on/off setting of bundle.json's ``inference`` (off when absent); BundleFormatError unless
    it is true or false."""
    value = inference.get(key, False)
    if not isinstance(value, bool):
        raise BundleFormatError(f"{meta_path}: inference.{key} must be true or false")
    return value


def read_metadata(path: str | Path) -> dict[str, Any]:
    """A bundle folder's bundle.json as a dict, its format checked (nothing else: see :func:`load_bundle`).

    NoWeightsError when the folder has none; BundleFormatError when it is not JSON or of another format."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise NoWeightsError(f"no model bundle at {path} ({META_FILE} missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleFormatError(f"{meta_path} is not valid bundle metadata: {exc!r}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise BundleFormatError(f"{meta_path}: format {found!r}, expected {FORMAT!r}")
    return meta


def metadata_bytes(meta: dict[str, Any]) -> bytes:
    """bundle.json's encoding (indented JSON, one trailing newline), for writing it."""
    return (json.dumps(meta, indent=2) + "\n").encode("utf-8")


def load_bundle(path: str | Path) -> ModelBundle:
    """Read and verify a bundle folder (or its bundle.json)."""
    path = Path(path)
    if path.name == META_FILE:
        path = path.parent
    meta_path = path / META_FILE
    meta = read_metadata(path)
    try:
        net, out, files = meta["network"], meta["output"], meta["files"]
        if out["kind"] not in OUTPUT_KINDS:
            raise BundleFormatError(f"{meta_path}: unknown output kind {out['kind']!r}")
        weights_file = path / files["weights"]["name"]
        layout_file = path / files["layout"]["name"]
        weights_sha, layout_sha = files["weights"]["sha256"], files["layout"]["sha256"]
        input_size, width = int(net["input_size"]), float(net["width"])
        arch = net.get("arch", "ResFCN")
        if arch not in ARCHITECTURES:
            raise BundleFormatError(f"{meta_path}: unknown network {arch!r}, expected one of {tuple(ARCHITECTURES)}")
        output_scale = float(out["scale"])
        inference = meta.get("inference", {})
        flip_average = _inference_switch(inference, "flip_average", meta_path)
        shift_average = _inference_switch(inference, "shift_average", meta_path)
        crop_zoom = inference.get("crop_zoom", 1.0)
        if isinstance(crop_zoom, bool) or not isinstance(crop_zoom, (int, float)) or not 0.5 <= crop_zoom <= 2.0:
            raise BundleFormatError(f"{meta_path}: inference.crop_zoom must be a number in [0.5, 2], got {crop_zoom!r}")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BundleFormatError):
            raise
        raise BundleFormatError(f"{meta_path} is not valid bundle metadata: {exc!r}") from exc
    _check_hash(weights_file, weights_sha, "weights")
    _check_hash(layout_file, layout_sha, "layout")
    layout = load_layout(layout_file)
    landmark_model = None
    if (entry := files.get("landmark_model")) is not None:
        try:
            model_file, model_sha = path / entry["name"], entry["sha256"]
        except (KeyError, TypeError) as exc:
            raise BundleFormatError(f"{meta_path}: files.landmark_model needs a name and a sha256") from exc
        _check_hash(model_file, model_sha, "landmark model")
        landmark_model = load_landmark_model(model_file)
        if landmark_model.n_map_points and landmark_model.map_size != input_size:
            raise BundleFormatError(
                f"{meta_path}: the landmark model reads {landmark_model.map_size}² maps, the network "
                f"makes {input_size}² ones"
            )
    if flip_average and not layout.mirrors_by_columns:
        raise BundleFormatError(
            f"{meta_path}: inference.flip_average is set, but layout {layout.layout_id!r} does not mirror by columns"
        )
    return ModelBundle(
        path=path,
        name=str(meta.get("name", path.name)),
        input_size=input_size,
        width=width,
        output_kind=out["kind"],
        output_scale=output_scale,
        layout=layout,
        weights_file=weights_file,
        weights_sha256=weights_sha,
        metadata=meta,
        flip_average=flip_average,
        shift_average=shift_average,
        crop_zoom=float(crop_zoom),
        landmark_model=landmark_model,
        arch=arch,
    )


def stored_state_dict(model: torch.nn.Module, *, half: bool = True) -> dict[str, torch.Tensor]:
    """``model``'s state dict as a bundle stores it: on the CPU, contiguous, floating point tensors in
    fp16 when ``half`` except :data:`KEEP_FP32`."""
    return {
        k: (v.half() if half and v.is_floating_point() and k not in KEEP_FP32 else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }


def save_bundle(
    path: str | Path,
    *,
    name: str,
    model: PositionMapNet,
    layout: UVLayout,
    metadata: dict[str, Any],
    half: bool = True,
) -> ModelBundle:
    """Write a bundle folder from a network and its layout; weights stored fp16 when ``half``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = stored_state_dict(model, half=half)
    tmp = path / "weights.tmp"
    torch.save(state, tmp)
    digest = sha256_file(tmp)
    weights_name = f"weights-{digest[:12]}.pt"
    for old in path.glob("weights-*.pt"):
        old.unlink()
    tmp.replace(path / weights_name)
    layout.save(path / LAYOUT_FILE)
    meta = {
        **metadata,
        "format": FORMAT,
        "name": name,
        "network": {"arch": model.arch, "input_size": model.input_size, "width": model.net.width},
        "output": {"kind": model.output_kind, "scale": model.output_scale},
        "layout_id": layout.layout_id,
        "files": {
            "weights": {"name": weights_name, "sha256": digest},
            "layout": {"name": LAYOUT_FILE, "sha256": sha256_file(path / LAYOUT_FILE)},
        },
    }
    (path / META_FILE).write_bytes(metadata_bytes(meta))
    return load_bundle(path)


def attach_landmark_model(
    path: str | Path, model: LandmarkShapeModel, provenance: dict[str, Any] | None = None
) -> ModelBundle:
    """Add (or replace) a bundle's landmark shape model: the file and its bundle.json entry (plus
    ``provenance`` under the top-level ``"landmark_model"`` key) are written together
    (engine.atomic_write); the rest of the metadata is kept."""
    path = Path(path)
    meta = copy.deepcopy(load_bundle(path).metadata)  # only a valid bundle gets one
    buf = io.BytesIO()
    model.save(buf)
    data = buf.getvalue()
    meta["files"]["landmark_model"] = {"name": LANDMARK_MODEL_FILE, "sha256": hashlib.sha256(data).hexdigest()}
    if provenance is not None:
        meta["landmark_model"] = provenance
    write_files_atomically(
        {
            path / LANDMARK_MODEL_FILE: data,
            path / META_FILE: metadata_bytes(meta),
        }
    )
    return load_bundle(path)


def shipped_bundle_path(name: str = DEFAULT_BUNDLE_DIR) -> Path:
    """A shipped bundle folder: ``engine/_weights/<name>`` when vendored (Blender zip), else the
    repo's ``weights/<name>``."""
    vendored = resources.files("engine") / "_weights" / name
    if vendored.is_dir():
        return Path(str(vendored))
    return Path(__file__).resolve().parent.parent / "weights" / name


def default_bundle_path() -> Path:
    """The bundle every user gets (:data:`DEFAULT_BUNDLE_DIR`)."""
    return shipped_bundle_path(DEFAULT_BUNDLE_DIR)


def fast_bundle_path() -> Path:
    """The shipped fast model (:data:`FAST_BUNDLE_DIR`), which quality ``"fast"`` runs."""
    return shipped_bundle_path(FAST_BUNDLE_DIR)

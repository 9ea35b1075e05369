"""The engine's facade: ``Reconstructor.from_bundle(path, options)(photo) -> list[FaceReconstruction]``.

One photo goes through: load (orientation, colour, size guard; engine.image_io) → find the faces
(detect, settle each crop on its own landmarks, restart doubtful crops, quarter turns;
engine.face_search over the network passes of engine.passes) → per face, mesh, landmarks,
visibility, pose and UV texture (engine.assemble). docs/pipeline.md walks through every stage.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .assemble import assemble_face
from .bundle import ModelBundle, default_bundle_path, fast_bundle_path, load_bundle
from .detect import FaceDetector, default_fallback_detector, get_detector
from .device import autocast_dtype, pick_device
from .errors import InvalidOptionError
from .face_search import FaceSearch
from .fused import fuse_model
from .image_io import load_image
from .mesh import mesh_uv
from .options import (
    DEFAULT_BOX_KIND,
    DEFAULT_MOUTH,
    DEFAULT_QUALITY,
    DEFAULT_TEXTURE_MODE,
    DEFAULT_TEXTURE_SIZE,
    ReconstructOptions,
    check_mouth_mode,
    check_quality,
    check_texture_mode,
    check_texture_size,
)
from .passes import NetworkPasses
from .readout import Readout
from .stage_times import StageClock, StageTimes
from .types import BoundingBox, FaceReconstruction

__all__ = ["Reconstructor", "ReconstructOptions", "StageTimes"]


class Reconstructor:
    """Callable: photo → faces. Keeps the network loaded; reuse one instance for many photos.

    ``options`` (:class:`~engine.options.ReconstructOptions`) say how it runs; the bundle's own
    inference settings fill what they leave at None. ``detector`` finds face boxes in an upright RGB
    photo (default: OpenCV's cascades, engine.detect); ``fallback_detector`` is asked when it finds
    none, its boxes kept only where the network confirms them — by default the relaxed cascades and
    close-up boxes when ``detector`` is the default one, else none.

    ``fast_bundle`` is the model quality ``"fast"`` runs (default with :meth:`from_bundle`: the shipped
    fast model; it must share the bundle's UV layout), loaded on its first use.

    After each call, :attr:`last_times` holds the milliseconds spent per stage, and
    ``passes_for(quality).images`` how many crops the network ran (mirror images included).
    """

    def __init__(
        self,
        bundle: ModelBundle,
        options: ReconstructOptions | None = None,
        *,
        detector: FaceDetector | None = None,
        fallback_detector: FaceDetector | None = None,
        fast_bundle: ModelBundle | Path | None = None,
    ) -> None:
        options = ReconstructOptions() if options is None else options
        if not isinstance(options, ReconstructOptions):
            raise InvalidOptionError(f"options must be a ReconstructOptions, got {type(options).__name__}")
        layout = bundle.layout
        if options.flip_average and not layout.mirrors_by_columns:
            raise InvalidOptionError(
                f"flip averaging needs a layout that mirrors by columns; {layout.layout_id!r} does not"
            )
        self.bundle, self.options, self.layout = bundle, options, layout
        self.device = pick_device(options.device)
        self.uv = mesh_uv(layout)
        self.shift_average = bundle.shift_average if options.shift_average is None else options.shift_average
        self.clock = StageClock()
        self.passes = self._network_passes(bundle, self.shift_average)
        if detector is None:
            detector = get_detector("opencv")
            if fallback_detector is None:
                fallback_detector = default_fallback_detector()
        self.search = FaceSearch(self.passes, detector, fallback_detector, turn_search=options.turn_search)
        self._fast_source = fast_bundle
        self._fast: tuple[ModelBundle, NetworkPasses, FaceSearch] | None = None
        self.last_times = StageTimes()

    def _network_passes(self, bundle: ModelBundle, shift_average: bool) -> NetworkPasses:
        """The network passes of ``bundle``'s model under this reconstructor's options."""
        options = self.options
        model = fuse_model(bundle.build_model(self.device))  # the inference form: same maps, less work
        return NetworkPasses(
            model,
            Readout.build(bundle.layout, bundle.input_size, base_map=model.mean_map_array()),
            input_size=bundle.input_size,
            amp_dtype=autocast_dtype(self.device),
            refine=options.refine,
            flip_average=bundle.flip_average if options.flip_average is None else options.flip_average,
            shift_average=shift_average,
            crop_zoom=bundle.crop_zoom if options.crop_zoom is None else options.crop_zoom,
            landmark_model=bundle.landmark_model if options.fit_landmarks else None,
            clock=self.clock,
        )

    def _fast_model(self) -> tuple[ModelBundle, NetworkPasses, FaceSearch]:
        """The fast model's bundle, passes and face search, loaded on first use."""
        if self._fast is None:
            source = self._fast_source
            if source is None:
                raise InvalidOptionError("quality 'fast' needs a fast model bundle; this reconstructor has none")
            bundle = source if isinstance(source, ModelBundle) else load_bundle(source)
            if bundle.layout.layout_id != self.layout.layout_id:
                raise InvalidOptionError(
                    f"the fast model's layout {bundle.layout.layout_id!r} is not the model's {self.layout.layout_id!r}"
                )
            passes = self._network_passes(bundle, shift_average=False)
            search = FaceSearch(
                passes, self.search.detector, self.search.fallback_detector, turn_search=self.options.turn_search
            )
            self._fast = (bundle, passes, search)
        return self._fast

    @property
    def has_fast_model(self) -> bool:
        """Whether quality ``"fast"`` can run (a fast model bundle was given)."""
        return self._fast_source is not None

    def _model_for(self, quality: str) -> tuple[ModelBundle, NetworkPasses, FaceSearch]:
        """The bundle, passes and face search that run at ``quality`` (engine.options.QUALITIES)."""
        return self._fast_model() if check_quality(quality) == "fast" else (self.bundle, self.passes, self.search)

    def bundle_for(self, quality: str) -> ModelBundle:
        """The bundle whose model runs at ``quality`` (engine.options.QUALITIES)."""
        return self._model_for(quality)[0]

    def passes_for(self, quality: str) -> NetworkPasses:
        """The network passes that run at ``quality``."""
        return self._model_for(quality)[1]

    @classmethod
    def from_bundle(
        cls,
        path: str | Path | None = None,
        options: ReconstructOptions | None = None,
        *,
        detector: FaceDetector | None = None,
        fallback_detector: FaceDetector | None = None,
        fast_path: str | Path | None = None,
    ) -> Reconstructor:
        """Load a bundle (default: the shipped model) and build the reconstructor; quality ``"fast"``
        runs ``fast_path`` (default: the shipped fast model, when installed)."""
        bundle = load_bundle(path if path is not None else default_bundle_path())
        if fast_path is None and (fast_bundle_path() / "bundle.json").is_file():
            fast_path = fast_bundle_path()
        return cls(bundle, options, detector=detector, fallback_detector=fallback_detector, fast_bundle=fast_path)

    def __call__(
        self,
        image: str | Path | np.ndarray,
        *,
        boxes: list[BoundingBox] | None = None,
        all_faces: bool = True,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
        texture_mode: str = DEFAULT_TEXTURE_MODE,
        mouth: str = DEFAULT_MOUTH,
        quality: str = DEFAULT_QUALITY,
        box_kind: str = DEFAULT_BOX_KIND,
    ) -> list[FaceReconstruction]:
        """Reconstruct the faces in ``image`` (path or array). ``boxes`` (image px) skip detection:
        face boxes, settled like a detector's, or with ``box_kind="roi"`` the crops themselves, run
        as given (engine.face_search); ``all_faces=False`` keeps the largest face only; ``texture_size`` within
        engine.options' limits; ``texture_mode`` (``complete`` or ``photo``, engine.texture) and
        ``mouth`` (``closed`` or ``open``, engine.mouth) shape the asset; ``quality`` ``preview`` skips
        shift averaging (``full``: the options' or bundle's averaging), ``fast`` runs the fast model
        (engine.light_network) with its own averaging. No face → ``[]``."""
        self.passes.shift_average = self.shift_average and check_quality(quality) == "full"
        _, passes, search = self._model_for(quality)
        texture_size = check_texture_size(texture_size)
        texture_mode = check_texture_mode(texture_mode)
        mouth = check_mouth_mode(mouth)
        t0 = time.perf_counter()
        rgb = load_image(image)
        t1 = time.perf_counter()
        self.clock.seconds.clear()
        passes.images = 0
        try:
            found = search.find(rgb, boxes=boxes, box_kind=box_kind, all_faces=all_faces)
        finally:
            passes.forget()
        t2 = time.perf_counter()
        measured = {"decode": (t1 - t0) * 1e3, "detect": self.clock["detect"] * 1e3, "crop": self.clock["crop"] * 1e3}
        measured["network"] = (t2 - t1) * 1e3 - measured["detect"] - measured["crop"]
        faces, texture_s = [], 0.0
        for roi, out_map, transform in zip(found.rois, found.maps, found.transforms):
            done = assemble_face(
                rgb,
                roi,
                out_map,
                transform,
                passes=passes,
                layout=self.layout,
                uv=self.uv,
                texture_size=texture_size,
                texture_mode=texture_mode,
                mouth=mouth,
            )
            faces.append(done.face)
            texture_s += done.texture_seconds
        if faces:
            measured["geometry"] = (time.perf_counter() - t2 - texture_s) * 1e3
            measured["texture"] = texture_s * 1e3
        self.last_times = StageTimes(**measured)
        return faces

"""Where the time of one reconstruction goes, per stage (``python -m engine bench``, the worker's replies)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds per stage of one call: decoding the photo, the detectors, cutting crops out of the
    photo, the network (with the read-out between passes), the mesh, landmarks, visibility and pose
    (geometry), the texture."""

    decode: float = 0.0
    detect: float = 0.0
    crop: float = 0.0
    network: float = 0.0
    geometry: float = 0.0
    texture: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> float:
        return sum(self.as_dict().values())


class StageClock:
    """Seconds accumulated per stage while a call runs; the parts that measure themselves (detectors,
    crops) add to it, the caller reads the rest off the wall clock."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    def __getitem__(self, stage: str) -> float:
        return self.seconds.get(stage, 0.0)

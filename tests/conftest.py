"""Shared fixtures: the ../shared data folder (or a skip), and the deterministic mean-face bundle
(tests/mean_face.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mean_face import build_mean_face_bundle

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PRNET_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs ../shared/data (not found at {SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def mean_face_bundle(tmp_path_factory) -> Path:
    return build_mean_face_bundle(tmp_path_factory.mktemp("bundles") / "mean_face")


@pytest.fixture()
def bundle_copy(mean_face_bundle, tmp_path) -> Path:
    """A writable copy of the mean-face bundle, for tests that corrupt or edit it."""
    dst = tmp_path / "b"
    shutil.copytree(mean_face_bundle, dst)
    return dst

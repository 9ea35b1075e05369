"""Where the development tools read the research data and keep their caches: set once, here.

* Data (``aflw_train``, ``aflw2000_dev``, ``teacher``, ``prnet_official``): ``$PRNET_SHARED_DATA``,
  else :data:`DEFAULT_DATA_DIR`, the ``shared/data`` folder beside the checkout that the project's
  machines provide. Every tool also takes its folders as arguments, which win over both.
* Caches (labels, the BFM basis): ``$PRNET_CACHE``, else ``~/.cache/prnet_blender``.
* Candidate bundles and run logs: ``runs/`` in the checkout (git-ignored) or any ``--out``; only the
  shipped model is committed (weights/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "PRNET_SHARED_DATA"
CACHE_ENV = "PRNET_CACHE"
CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = CHECKOUT.parent / "shared" / "data"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "prnet_blender"
RUNS_DIR = CHECKOUT / "runs"


def shared_data_dir() -> Path:
    """The research data folder: ``$PRNET_SHARED_DATA``, else :data:`DEFAULT_DATA_DIR`."""
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA_DIR))


def default_cache_dir() -> Path:
    """The tools' cache folder: ``$PRNET_CACHE``, else :data:`DEFAULT_CACHE_DIR`."""
    return Path(os.environ.get(CACHE_ENV, DEFAULT_CACHE_DIR))

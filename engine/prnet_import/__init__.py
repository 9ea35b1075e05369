"""Official PRNet weights into a model bundle, without TensorFlow: ``python -m engine import-prnet``.

* :mod:`.tf_checkpoint` reads a TensorFlow v2 checkpoint (index + data shard) with numpy,
  checking each tensor's CRC32C (:mod:`.crc32c`);
* :mod:`.layout` builds a UV layout from PRNet's published ``Data/uv-data`` files;
* :mod:`.importer` maps the ResFCN256 variables onto our network and writes the bundle.

See engine/data/PRNET_IMPORT.md for what to download and how the import was checked.
"""

from __future__ import annotations

from .importer import import_prnet

__all__ = ["import_prnet"]

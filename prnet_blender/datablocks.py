"""Datablocks this add-on makes: recording them as they are made, and removing them again.

A build records every datablock it creates (:func:`track`) so that a failure half way removes
exactly those (:func:`remove_datablocks`) and nothing of the artist's.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy


def remove_datablocks(blocks: Sequence[bpy.types.ID]) -> None:
    """Remove datablocks this module made (the failure path, and undo's equivalent in scripts)."""
    alive = [b for b in blocks if is_alive(b)]
    if alive:
        bpy.data.batch_remove(alive)


def track(created: list | None, block):
    """Record a new datablock for removal on failure (when a list is given)."""
    if created is not None:
        created.append(block)
    return block


def is_alive(block) -> bool:
    try:
        block.name  # noqa: B018 - raises ReferenceError once the datablock was removed
    except ReferenceError:
        return False
    return True

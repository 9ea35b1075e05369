"""Tolerances of the add-on tests, in one table with units (docs/architecture.md, "Style").

(Named ``addon_tolerances`` so it never shadows tests/engine/tolerances.py on sys.path.)
"""

from __future__ import annotations

EXACT_M = 1e-9  # float64 frame maths, metres
FLOAT32_M = 1e-6  # positions that went through float32 (mesh vertices, Blender's matrices): 1 µm
ROTATION_ENTRY = 1e-9  # |R − R'| per entry, float64 rotation algebra
BLENDER_ROTATION_ENTRY = 1e-5  # same through Blender's float32 Euler / matrix_world
POSE_DEG = 0.1  # object rotation vs the engine's pose (issue 4)
UV_EXACT = 1e-6  # texture coordinates (float32)
PIXEL_LEVEL = 0.5 / 255  # an 8-bit texel stored in Blender's float pixels

"""Tolerances of the engine tests, in one table with units (docs/architecture.md, "Style").

Synthetic position maps are exact (the canonical face under a known similarity), so most tolerances
are float32 round-off; the others name the approximation they absorb.
"""

from __future__ import annotations

# ---- geometry, image px unless stated ------------------------------------------------------------
POSITION_PX = 1e-3  # float32 round-off of a read-out in image px (maps with coordinates ≲ 1000 px)
LANDMARK_PX = 1e-3  # landmarks vs the transformed canonical read-out (linear ⇒ exact up to float32)
CANONICAL_MM = 1e-3  # frontalised vertices vs the canonical face, mm
UV_EXACT = 1e-6  # texture coordinates, fraction of the UV square

NEAREST_VERTEX_PX = 1.0  # the depth map's nearest pixel vs the nearest vertex: one pixel of raster
NOSE_TIP_PX = 10.0  # nearest pixel vs the iBUG nose-tip landmark: 5 mm at 2 px/mm (the landmark sits on
# the nose's lower front, ≈ 3 mm from the mean face's most protruding point)

# ---- angles, degrees ------------------------------------------------------------------------------
POSE_DEG = 0.5  # pose recovered from a synthetic map (brief's requirement)
EULER_ROUND_TRIP_DEG = 1e-6  # angles → R → angles away from gimbal lock
ROTATION_ENTRY = 1e-9  # |R − R'| per entry for matrices rebuilt from angles (also at gimbal lock)

# ---- similarity fit -------------------------------------------------------------------------------
SCALE_REL = 1e-6  # relative error of the fitted scale on exact data
TRANSLATION_PX = 1e-3  # fitted translation on exact data (float32 inputs), image px

# ---- colours, 8-bit levels ------------------------------------------------------------------------
COLOR_LEVELS = 1.0  # texel vs photo colour: cv2.remap's 8-bit output rounding (0.5) plus its 1/32 px
# coordinate quantisation on a gradient of < 0.6 levels/px (measured worst 0.52)
TEXEL_OFFSET_LEVELS = 1.5  # texel nearest a vertex's uv vs the vertex colour: COLOR_LEVELS plus up to
# half a texel (≈ 0.3 image px at 512², ≈ 0.2 levels on the gradient) between texel centre and vertex
MIRROR_COLOR_MEDIAN_LEVELS = 1.0  # median |filled texel − texel at (i, size−1−j)|: the layout's mirror
# map is the horizontal flip up to ≈ 1 px (measured median 0)
VERTEX_COLOR_LEVELS = 1e-3  # vertex_colors is exact float bilinear: only float32 round-off

# ---- fractions ------------------------------------------------------------------------------------
FRONTAL_VISIBLE_MIN = 0.95  # share of vertices seen on a frontal face (nostrils, jaw sides hide ≈ 2 %)
COVERED_PIXELS = (0.15, 0.5)  # share of the 640×480 photo covered by the 310 px wide synthetic face
FRONT_FACING_MIN = 0.90  # share of triangles facing the camera on a frontal face (y flipped up)
STEEP_FRONT_FACING_MIN = 0.999  # same among triangles tilted < 60° from the view axis (nostrils: 11)
HIDDEN_SIDE_SEEN_MAX = 0.2  # vertices / texels seen on the far half of the face at 80° yaw
NEAR_SIDE_SEEN_MIN = 0.8  # vertices / texels seen on the near half at 80° yaw
VERTEX_TEXELS_SEEN_MIN = 0.55  # vertices whose uv texel is in the mask at 20° yaw (measured 0.62:
# hidden vertices, the sides seen at more than 60° and texels just outside the mesh's UV footprint are not)
SEEN_WITHOUT_GRAZING = 0.9  # share of face texels the photo may show on a frontal face: the jaw sides
# and the forehead's top corners are seen at more than 60° and weigh less than one half
PHOTO_MODE_PADDED_MAX = 0.05  # face texels that photo mode's edge padding colours beyond the mask
SEAM_RATIO_MAX = 2.0  # engine.texture_quality.seam_ratio of a completed texture (1 = no seam; a black
# or mismatched seam line reads as tens)
GRAZING_SMEAR_MAX = 0.002  # share of face texels showing what lies past the silhouette (measured 0)
GREEN_MARGIN_LEVELS = 40  # a texel counts as green when G exceeds R by this: the skin is R > G

# ---- surface quality (engine.mesh_quality): the artist-ready bars ---------------------------------
MESH_NORMAL_DEVIATION_DEG = 0.6  # median angle between a vertex normal and its neighbours' mean normal
MESH_BORDER_ROUGHNESS = 1.10  # outer border length / the same loop smoothed along itself

"""The face's look in Blender: the UV texture as a packed image, and the material that shows it.

Textures are packed into the .blend (it travels without the worker's files). Each image is named
after its photo and face, unique in the file, and points at ``//textures/<its name>.png``, so
File › External Data › Unpack Resources writes one file per face and reloading keeps each face's
own pixels.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import bpy
import numpy as np

from .datablocks import track

SKIN_ROUGHNESS = 0.6  # matte: the photo texture already carries the light it was taken in
MOUTH_RGB = (0.06, 0.015, 0.015)  # linear RGB: the dark red of a mouth's inside
TEXTURE_FOLDER = "textures"  # where Blender's Unpack writes packed images, beside the .blend


def texture_pixels(texture: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, row 0 on top → Blender's flat float32 RGBA, row 0 at the bottom."""
    texture = np.asarray(texture)
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8, got {texture.shape} {texture.dtype}")
    rgba = np.ones((*texture.shape[:2], 4), dtype=np.float32)
    np.multiply(texture[::-1], np.float32(1 / 255), out=rgba[..., :3], casting="unsafe")
    return rgba.ravel()


def build_texture_image(
    name: str, texture: np.ndarray, *, png: str | None = None, created: list | None = None
) -> bpy.types.Image:
    """The UV texture as an sRGB image, packed into the .blend (saved with it, no file needed).

    With ``png`` (the worker's encoding of the same texture) the file's bytes are packed as they are:
    ≈ 2 ms instead of ≈ 400 ms of float conversion and PNG encoding on Blender's UI thread at 2048².
    """
    if png is not None and Path(png).is_file():
        name = _free_image_name(name)
        with tempfile.TemporaryDirectory(prefix="prnet_texture_") as tmp:
            # Unpack writes a packed file under the name it was loaded from: load it from a copy named
            # after this face's (unique) image, not the worker's face_1_texture.png
            staged = Path(tmp) / f"{bpy.path.clean_name(name)}.png"
            shutil.copyfile(png, staged)
            image = track(created, bpy.data.images.load(str(staged), check_existing=False))
            image.pack()
        image.name = name
    else:
        pixels = texture_pixels(texture)
        height, width = texture.shape[:2]
        image = track(created, bpy.data.images.new(name, width=width, height=height, alpha=False))
        image.pixels.foreach_set(pixels)
        image.pack()
    name_texture(image, image.name)
    image.file_format = "PNG"
    return image


def name_texture(image: bpy.types.Image, name: str) -> None:
    """Name a packed texture and the file Unpack will write it to after that name.

    File › External Data › Unpack writes each packed image to //textures/<its file name>: it is the
    datablock's name, unique in the .blend (Blender adds .001, …), so no face overwrites another."""
    image.name = name
    image.filepath_raw = f"//{TEXTURE_FOLDER}/{bpy.path.clean_name(image.name)}.png"


def _free_image_name(name: str) -> str:
    """``name``, or the first of ``name.001``, ``name.002``, … that no image of the file has."""
    taken = {image.name for image in bpy.data.images}
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}.{k:03d}"
    return candidate


def build_material(name: str, image: bpy.types.Image, *, created: list | None = None) -> bpy.types.Material:
    """Principled BSDF whose base colour is the texture (UV map ``UVMap``)."""
    mat = track(created, bpy.data.materials.new(name))
    if mat.node_tree is None:  # Blender < 5.0 creates materials without nodes
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None) or nodes.new("ShaderNodeBsdfPrincipled")
    out = next((n for n in nodes if n.type == "OUTPUT_MATERIAL"), None) or nodes.new("ShaderNodeOutputMaterial")
    if not out.inputs["Surface"].is_linked:
        links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.location = (bsdf.location.x - 400, bsdf.location.y)
    links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = SKIN_ROUGHNESS
    return mat


def build_mouth_material(name: str, *, created: list | None = None) -> bpy.types.Material:
    """The dark inside of the mouth, for the strip that closes the lips: a thin line at rest, the open
    mouth when a face rig drops the jaw."""
    mat = track(created, bpy.data.materials.new(name))
    if mat.node_tree is None:
        mat.use_nodes = True
    bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        bsdf = mat.node_tree.nodes.new("ShaderNodeBsdfPrincipled")
        out = next(n for n in mat.node_tree.nodes if n.type == "OUTPUT_MATERIAL")
        mat.node_tree.links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    bsdf.inputs["Base Color"].default_value = (*MOUTH_RGB, 1.0)
    bsdf.inputs["Roughness"].default_value = SKIN_ROUGHNESS
    mat.diffuse_color = (*MOUTH_RGB, 1.0)  # what Workbench's material colour shows
    return mat

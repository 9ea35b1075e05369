"""Command line: ``python -m engine {reconstruct, track, bench, import-prnet}``.

Evaluation is ``python -m training evaluate``; ``track`` lives in engine.track_cli.

Only parsing and delegation live here; ``main(argv) -> int`` is testable without a subprocess.
Errors from the library become one line on stderr per bad input, and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from .device import DEFAULT_DEVICE, DEVICES
from .errors import EngineError, ImageWarning, InvalidOptionError
from .options import (
    BOX_KINDS,
    DEFAULT_BOX_KIND,
    DEFAULT_MOUTH,
    DEFAULT_QUAD_CELLS,
    DEFAULT_QUALITY,
    DEFAULT_TEXTURE_MODE,
    DEFAULT_TEXTURE_SIZE,
    DEFAULT_TOPOLOGY,
    MOUTH_MODES,
    QUAD_CELLS_MAX,
    QUAD_CELLS_MIN,
    QUALITIES,
    TEXTURE_MODES,
    TEXTURE_SIZE_MAX,
    TEXTURE_SIZE_MIN,
    TOPOLOGIES,
    check_quad_cells,
    check_texture_size,
)

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def progress_line(i: int, n: int | None, text: str) -> None:
    """Redraw the progress line on stderr: item ``i`` of ``n`` (None: a count without a bar)."""
    width = 24
    if n is None:
        sys.stderr.write(f"\r{i} {text[:60]:<60}")
    else:
        filled = int(width * min(i, n) / max(n, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {i}/{n} {text[:60]:<60}")
        if i == n:
            sys.stderr.write("\n")
    sys.stderr.flush()


def _read_boxes(path: Path) -> dict[str, list]:
    """``--boxes FILE``: {photo file name: [BoundingBox, ...]}; InvalidOptionError naming the file."""
    from .options import parse_boxes

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidOptionError(f"boxes file {path} is not readable JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidOptionError(f"boxes file {path} must map photo file names to lists of [left, top, right, bottom]")
    return {
        name: parse_boxes(boxes, what=f"bad boxes for {name!r} in boxes file {path}") for name, boxes in raw.items()
    }


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from .api import Reconstructor
    from .export import check_writable, export_face
    from .image_io import load_image
    from .options import ReconstructOptions
    from .quad_mesh import face_mesh
    from .rig import face_rig_of

    try:
        boxes = _read_boxes(args.boxes) if args.boxes else {}
        check_writable(args.output)
        options = ReconstructOptions(
            device=args.device, flip_average=args.flip_average, shift_average=args.shift_average, refine=args.settle
        )
        rec = Reconstructor.from_bundle(args.bundle, options)
    except (EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    failures = 0
    used_stems: set[str] = set()
    formats = ("obj", "landmarks", "pose") + tuple(args.extra_formats or ())
    for i, photo in enumerate(args.photos, start=1):
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ImageWarning)
                rgb = load_image(photo)
            for w in caught:
                sys.stderr.write("\n" if i > 1 else "")
                print(f"warning: {w.message}", file=sys.stderr)
            faces = rec(
                rgb,
                boxes=boxes.get(Path(photo).name),
                box_kind=args.box_kind,
                all_faces=args.all_faces,
                texture_size=args.texture_size,
                texture_mode=args.texture_mode,
                mouth=args.mouth,
                quality=args.quality,
            )
            stem = _unique_stem(Path(photo).stem, used_stems)
            if stem != Path(photo).stem:
                sys.stderr.write("\n" if i > 1 else "")
                print(f"{photo}: files written as {stem!r} (a safe, distinct name)", file=sys.stderr)
            for k, face in enumerate(faces, start=1):
                mesh = face_mesh(face, rec.layout, args.topology, args.quad_cells, rgb)
                export_face(
                    face,
                    args.output,
                    stem if len(faces) == 1 else f"{stem}_{k}",
                    formats=formats,
                    mesh=mesh,
                    texture_alpha=args.texture_mode == "photo",
                    rig=face_rig_of(face, mesh, rec.layout) if args.rig else None,
                )
            msg = f"{Path(photo).name}: {len(faces)} face(s), {time.perf_counter() - t0:.2f} s"
            if not faces:
                msg = f"{Path(photo).name}: no face found"
        except (EngineError, ValueError) as exc:
            failures += 1
            progress_line(i, len(args.photos), Path(photo).name)
            sys.stderr.write("\n" if i < len(args.photos) else "")
            print(f"error: {photo}: {exc}", file=sys.stderr)
            continue
        progress_line(i, len(args.photos), msg)
        if not faces:
            sys.stderr.write("\n" if i < len(args.photos) else "")
            print(f"{photo}: no face found (nothing written)", file=sys.stderr)
    return EXIT_BAD_INPUT if failures else EXIT_OK


def _unique_stem(name: str, used: set[str]) -> str:
    """The file stem for a photo named ``name``: safe (engine.export.file_stem) and not one an earlier
    photo of this run took (photos of one name in two folders would overwrite each other)."""
    from .export import file_stem

    stem, k = file_stem(name), 1
    while (stem if k == 1 else f"{stem}_{k}") in used:
        k += 1
    chosen = stem if k == 1 else f"{stem}_{k}"
    used.add(chosen)
    return chosen


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    try:
        run_bench(bundle=args.bundle, devices=args.device, repeats=args.repeats, texture_size=args.texture_size)
    except (EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_import_prnet(args: argparse.Namespace) -> int:
    from .prnet_import import import_prnet

    try:
        bundle = import_prnet(args.checkpoint, args.uv_data, args.output, name=args.name, half=args.half)
    except (EngineError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"wrote {bundle.path} ({bundle.bundle_id}, layout {bundle.layout.layout_id}, "
        f"{bundle.layout.n_vertices} vertices)"
    )
    return EXIT_OK


def add_averaging_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each face with its mirror image's prediction (2× network time; default: the bundle's setting, "
        "on for the shipped model)",
    )
    p.add_argument(
        "--shift-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also average each face's final map with 4 crops shifted by 3 %% of its side (≈3× the network time "
        "of the final pass; default: the bundle's setting, on for the shipped model)",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m engine", description="PRNet-style 3D face reconstruction")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reconstruct", help="photos → textured OBJ, landmarks, pose")
    r.add_argument("photos", nargs="+", help="photo files (jpg, png, …)")
    r.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if missing)")
    r.add_argument("--bundle", type=Path, default=None, help="model bundle folder (default: the shipped model)")
    r.add_argument(
        "--texture-size",
        type=int,
        default=DEFAULT_TEXTURE_SIZE,
        help=f"UV texture side, {TEXTURE_SIZE_MIN}–{TEXTURE_SIZE_MAX} (default %(default)s)",
    )
    r.add_argument("--device", default=DEFAULT_DEVICE, help=f"{', '.join(DEVICES)} (default %(default)s)")
    r.add_argument(
        "--boxes",
        type=Path,
        default=None,
        help='JSON {"photo.jpg": [[left, top, right, bottom], ...]} used instead of detection',
    )
    r.add_argument(
        "--box-kind",
        choices=BOX_KINDS,
        default=DEFAULT_BOX_KIND,
        help="with --boxes: face = boxes around the faces, cropped and settled like a detector's; roi = the "
        "crops themselves, each run once as given (the AFLW2000-3D protocol's roi boxes) (default: %(default)s)",
    )
    r.add_argument(
        "--settle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-crop each face on its own landmarks until the crop settles (default on; --no-settle: one pass "
        "on the detected or given face box's crop)",
    )
    r.add_argument("--all-faces", action="store_true", help="every face found (default: the largest)")
    r.add_argument(
        "--texture-mode",
        choices=TEXTURE_MODES,
        default=DEFAULT_TEXTURE_MODE,
        help="complete: every texel coloured, the hidden side from the mirror side; photo: only what the photo "
        "shows, the rest transparent in the PNG (default: %(default)s)",
    )
    r.add_argument(
        "--mouth",
        choices=MOUTH_MODES,
        default=DEFAULT_MOUTH,
        help="closed: the lips meet; open: the mesh is cut along the inner lips (default: %(default)s)",
    )
    r.add_argument(
        "--topology",
        choices=TOPOLOGIES,
        default=DEFAULT_TOPOLOGY,
        help="triangles: the dense mesh; quads: a regular quad grid for sculpting (default: %(default)s)",
    )
    r.add_argument(
        "--quad-cells",
        type=int,
        default=DEFAULT_QUAD_CELLS,
        help=f"with --topology quads: grid cells across the UV square, {QUAD_CELLS_MIN}-{QUAD_CELLS_MAX} "
        "(default: %(default)s)",
    )
    r.add_argument(
        "--quality",
        choices=QUALITIES,
        default=DEFAULT_QUALITY,
        help="full: the model's averaging; preview: no shift averaging (a third of the network crops, a "
        "little less accurate); fast: the fast model (weights/fast: ≈7× less network time per crop, less "
        "accurate) (default: %(default)s)",
    )
    r.add_argument(
        "--rig",
        action="store_true",
        help="also write STEM.rig.json (bones) and STEM.rig.npz (skin weights) for the mesh (see README)",
    )
    r.add_argument("--extra-formats", nargs="*", choices=("ply", "npz"), help="also write these formats")
    add_averaging_options(r)
    r.set_defaults(func=cmd_reconstruct)

    from .track_cli import add_track_parser

    add_track_parser(sub)

    b = sub.add_parser("bench", help="per-stage latency on the sample photo")
    b.add_argument("--bundle", type=Path, default=None)
    b.add_argument("--device", nargs="*", default=None, help="devices to time (default: every available one)")
    b.add_argument("--repeats", type=int, default=20)
    b.add_argument("--texture-size", type=int, default=DEFAULT_TEXTURE_SIZE)
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("import-prnet", help="official PRNet TF checkpoint → model bundle")
    i.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="checkpoint prefix, e.g. Data/net-data/256_256_resfcn256_weight "
        "(the folder holds PREFIX.index and PREFIX.data-00000-of-00001)",
    )
    i.add_argument(
        "--uv-data",
        type=Path,
        required=True,
        help="PRNet's Data/uv-data folder (uv_kpt_ind.txt, face_ind.txt, canonical_vertices.npy, uv_weight_mask.png)",
    )
    i.add_argument("-o", "--output", type=Path, required=True, help="bundle folder to write")
    i.add_argument("--name", default="prnet-official", help="bundle name (default: %(default)s)")
    i.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    i.set_defaults(func=cmd_import_prnet)
    return ap


def main(argv: list[str] | None = None) -> int:
    from .device import limit_thread_spinning

    limit_thread_spinning()  # before anything imports torch
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "texture_size", None) is not None:
            check_texture_size(args.texture_size)
        if getattr(args, "quad_cells", None) is not None:
            check_quad_cells(args.quad_cells)
    except InvalidOptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: files are written whole (engine.atomic_write), so just stop
        print("\ninterrupted: the files written so far are complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    """SIGTERM ends the run as Ctrl-C does."""
    raise KeyboardInterrupt

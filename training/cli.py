"""Command line of the development tools: ``python -m training evaluate DIR [...]``.

The other tools run as modules of their own (``python -m training.train``, ``training.labels``,
``training.compare_evals``, …; docs/training-journal.md and weights/README.md). Evaluation lives
here, not in ``python -m engine``: it needs the benchmark's metrics and data layout, which the
runtime (the wheel, the Blender zip) does not ship.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import EXIT_BAD_INPUT, EXIT_OK, add_averaging_options
from engine.device import DEFAULT_DEVICE, DEVICES
from engine.errors import EngineError

from .dev_split import HALVES


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .benchmark import run_evaluation

    try:
        run_evaluation(
            args.folder,
            bundle=args.bundle,
            json_out=args.json,
            use_detector=args.detector,
            device=args.device,
            flip_average=args.flip_average,
            shift_average=args.shift_average,
            crop_zoom=args.crop_zoom,
            fit_landmarks=args.landmark_model,
            half=args.half,
        )
    except (EngineError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training", description="prnet_blender development tools")
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="AFLW2000-3D style NME on a folder like aflw2000_dev")
    e.add_argument("folder", type=Path)
    e.add_argument("--bundle", type=Path, default=None, help="model bundle folder (default: the shipped model)")
    e.add_argument("--json", type=Path, default=None, help="write the figures as JSON here")
    e.add_argument(
        "--half",
        choices=HALVES,
        default="all",
        help="the dev folder's half (training.dev_split): tuning for every choice, report once per shipped "
        "model (default %(default)s)",
    )
    e.add_argument("--detector", action="store_true", help="crop with our detector + refinement, not the roi boxes")
    e.add_argument("--device", default=DEFAULT_DEVICE, help=f"{', '.join(DEVICES)} (default %(default)s)")
    e.add_argument(
        "--crop-zoom",
        type=float,
        default=None,
        help="crop side = roi side / ZOOM (default: the bundle's inference.crop_zoom; 1 = the protocol's roi)",
    )
    add_averaging_options(e)
    e.add_argument(
        "--landmark-model",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fit the landmarks to the bundle's landmark shape model when it has one (default on; "
        "--no-landmark-model scores the network's read-out alone)",
    )
    e.set_defaults(func=cmd_evaluate)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))

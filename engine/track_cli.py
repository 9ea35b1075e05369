"""``python -m engine track VIDEO -o DIR``: a video → ``STEM.track.json`` (and a mesh cache), with progress.

Parsing and the run loop only: engine.video reads the frames, engine.tracker follows the face,
engine.track_export writes the files. Ctrl-C (or SIGTERM) stops the run and still writes the frames
tracked so far as complete files, marked interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, progress_line
from .device import DEFAULT_DEVICE, DEVICES
from .errors import EngineError
from .options import DEFAULT_TEXTURE_SIZE, TEXTURE_SIZE_MAX, TEXTURE_SIZE_MIN


def add_track_parser(sub) -> None:
    t = sub.add_parser("track", help="video → per-frame head pose and landmarks (and a mesh cache)")
    t.add_argument("video", type=Path, help="video file (mp4, mov, avi, … as OpenCV decodes)")
    t.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if missing)")
    t.add_argument("--start", type=float, default=0.0, help="first second to track (default: 0)")
    t.add_argument("--end", type=float, default=None, help="last second to track (default: the end)")
    t.add_argument("--every", type=int, default=1, help="track every N-th frame (default: %(default)s)")
    t.add_argument(
        "--fast",
        action="store_true",
        help="one network image per frame instead of two (about twice the frames per second, a little more jitter)",
    )
    t.add_argument(
        "--mesh-cache",
        action="store_true",
        help="also write STEM.pc2 (the dense mesh per frame, for Blender's Mesh Cache modifier) and the first "
        "tracked frame's STEM.obj with its texture",
    )
    t.add_argument(
        "--texture-size",
        type=int,
        default=DEFAULT_TEXTURE_SIZE,
        help=f"with --mesh-cache: the OBJ's texture side, {TEXTURE_SIZE_MIN}–{TEXTURE_SIZE_MAX} (default %(default)s)",
    )
    t.add_argument("--no-smoothing", action="store_true", help="raw per-frame results (no One Euro filter)")
    t.add_argument("--bundle", type=Path, default=None, help="model bundle folder (default: the shipped model)")
    t.add_argument("--device", default=DEFAULT_DEVICE, help=f"{', '.join(DEVICES)} (default %(default)s)")
    t.set_defaults(func=cmd_track)


def cmd_track(args: argparse.Namespace) -> int:
    from .api import Reconstructor
    from .export import check_writable, file_stem
    from .options import ReconstructOptions
    from .track_export import TrackWriter
    from .tracker import FaceTracker
    from .video import FrameRange, open_video

    try:
        frame_range = FrameRange(args.start, args.end, args.every)
        check_writable(args.output)
        video = open_video(args.video)
    except (EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with video:
        try:
            rec = Reconstructor.from_bundle(args.bundle, ReconstructOptions(device=args.device))
        except (EngineError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        tracker = FaceTracker(rec, fast=args.fast, smoothing=not args.no_smoothing)
        header = {
            "video": args.video.name, "fps": video.fps, "frame_size": list(video.frame_size),
            "every": args.every, "mode": "fast" if args.fast else "default", "bundle_id": tracker.bundle.bundle_id,
        }  # fmt: skip
        writer = TrackWriter(args.output, file_stem(args.video.stem), header=header, mesh_cache=args.mesh_cache,
                             every=args.every)  # fmt: skip
        total = video.count(frame_range)
        n, found, interrupted, t0 = 0, 0, False, time.perf_counter()
        try:
            for tracked, frame in tracker.track_frames(video.frames(frame_range)):
                first = None
                if args.mesh_cache and tracked.faces and writer.mesh_cache_pending:
                    first = tracker.reconstruction(frame.rgb, tracked.faces[0], texture_size=args.texture_size)
                writer.add(tracked, first)
                n, found = n + 1, found + bool(tracked.faces)
                rate = n / max(time.perf_counter() - t0, 1e-9)
                text = f"frame {tracked.index}, {rate:.1f} frames/s, face in {found}/{n}"
                progress_line(n, total, text)
        except KeyboardInterrupt:
            interrupted = True
        except (EngineError, ValueError) as exc:
            writer.abandon()
            print(f"\nerror: {args.video}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        written = writer.finish(interrupted=interrupted)
    if total is None or n != total:
        sys.stderr.write("\n")  # end the progress line (a full bar ended it)
    took = time.perf_counter() - t0
    print(f"{args.video.name}: {n} frames in {took:.1f} s ({n / max(took, 1e-9):.1f} frames/s), face in {found}; "
          f"wrote {', '.join(p.name for p in written)}", file=sys.stderr)  # fmt: skip
    if interrupted:
        print("interrupted: the files hold the frames tracked so far and are complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK

"""``python -m training.compare_evals A.json B.json``: two ``evaluate --json`` results, face by face.

With ``--detector`` each model finds its own set of faces (a model that finds one more hard profile
scores worse for it), so the two balanced figures are not comparable as printed. This scores both on
the images both found (``per_image`` of :mod:`training.benchmark`), in the same |yaw| bins,
counts the faces only one of them found, and lists the images whose NME changed most.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .metrics import YAW_BINS, binned


def load_per_image(path: str | Path) -> list[dict]:
    """The ``per_image`` records of an ``evaluate --json`` file (ValueError when it has none)."""
    result = json.loads(Path(path).read_text(encoding="utf-8"))
    if "per_image" not in result:
        raise ValueError(f"{path} has no per_image records: re-run evaluate with this version")
    return result["per_image"]


def compare(a: list[dict], b: list[dict], *, key: str = "nme_2d") -> dict:
    """Binned NME of both on the images both scored, and the counts each alone scored.

    a, b: per-image records of the same folder (same images, same order; ValueError otherwise).
    Returns ``{"common": n, "only_a": n, "only_b": n, "a": bins, "b": bins, "changes": [(image,
    abs_yaw, nme_a, nme_b), …] sorted by |nme_b − nme_a|, largest first}``; bins as
    :func:`training.metrics.binned`, in percent.
    """
    if [r["image"] for r in a] != [r["image"] for r in b]:
        raise ValueError("the two evaluations are of different image lists")
    va = np.array([np.nan if r[key] is None else r[key] for r in a])
    vb = np.array([np.nan if r[key] is None else r[key] for r in b])
    found_a, found_b = ~np.isnan(va), ~np.isnan(vb)
    both = found_a & found_b
    if not both.any():
        raise ValueError("the two evaluations have no scored image in common")
    names = [r["image"] for r, hit in zip(a, both) if hit]
    yaw = np.array([r["abs_yaw"] for r in a])[both]
    va, vb = va[both], vb[both]
    order = np.argsort(-np.abs(vb - va))
    return {
        "common": int(both.sum()),
        "only_a": int((found_a & ~found_b).sum()),
        "only_b": int((found_b & ~found_a).sum()),
        "a": binned(va, yaw),
        "b": binned(vb, yaw),
        "changes": [(names[i], float(yaw[i]), float(va[i]), float(vb[i])) for i in order],
    }


def _row(label: str, bins: dict) -> str:
    cells = "  ".join(f"{bins[name]:.2f}" for name, *_ in YAW_BINS)
    return f"{label}: {cells}  balanced {bins['balanced']:.2f}  mean {bins['mean']:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.compare_evals", description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="evaluate --json result (the reference)")
    ap.add_argument("b", type=Path, help="evaluate --json result (the candidate)")
    ap.add_argument("--metric", choices=("nme_2d", "nme_3d"), default="nme_2d")
    ap.add_argument("--top", type=int, default=8, help="images with the largest change to list (default 8)")
    args = ap.parse_args(argv)
    try:
        r = compare(load_per_image(args.a), load_per_image(args.b), key=args.metric)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    w = sys.stdout.write
    w(f"{r['common']} images scored by both; {r['only_a']} only by A, {r['only_b']} only by B\n")
    w(f"{args.metric} % on the common images ({' / '.join(name for name, *_ in YAW_BINS)}):\n")
    w(_row("A", r["a"]) + "\n" + _row("B", r["b"]) + "\n")
    w("largest changes (image, |yaw|, A, B):\n")
    for name, yaw, na, nb in r["changes"][: args.top]:
        w(f"  {name}  {yaw:5.1f}  {na:6.2f} -> {nb:6.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

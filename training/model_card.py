"""The bundle.json record of a chained training run: lineage and the evaluations that decided it.

``python -m training.model_card --bundle B --parent P --run-id N --note TEXT --eval KEY=FILE …``

``train.py --init-from P --bundle-out B`` writes a ``"training"`` entry for its own run only (its
epochs, steps and CPU minutes) and, as ``"metrics"``, the dev figures it logged while training. A
bundle that ships states its whole lineage and the figures of the full evaluations
(``python -m engine evaluate … --json FILE``). This writes both into B's bundle.json:

- ``training``: the run's own recipe (sampling, shares, augmentation, weights), ``epochs_done`` and
  ``cpu_minutes`` summed with the parent's, the parent's ``run_<id>_steps`` entries plus this run's,
  and the parent's ``runs`` text with ``run <id>: TEXT`` appended;
- ``metrics``: one entry per ``--eval`` (the evaluation's JSON without its per-image records), plus
  the parent's ``benchmark_bins`` note.

The rest of bundle.json (files, network, landmark model) is kept; the file is replaced atomically.
A bundle whose training entry already has a lineage is refused, so the tool cannot count a run twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.atomic_write import write_files_atomically
from engine.bundle import META_FILE, metadata_bytes, read_metadata
from engine.errors import NoWeightsError

RUN_KEYS = ("sampling", "bin_shares", "ema_decay", "landmark_weight", "augmentation")  # a run's recipe
DROPPED_EVAL_KEYS = ("per_image",)  # per-image records stay in the evaluation's own JSON


def lineage(parent: dict[str, Any], run: dict[str, Any], run_id: int, note: str) -> dict[str, Any]:
    """The training entry of a run (``run``: train.py's entry for it) chained onto ``parent``'s."""
    if "runs" in run:
        raise ValueError("the bundle's training entry already has a lineage (model_card was run on it)")
    for name, entry in (("parent", parent), ("run", run)):
        missing = [k for k in ("epochs_done", "cpu_minutes") if k not in entry]
        if missing:
            raise ValueError(f"the {name}'s training entry lacks {', '.join(missing)}")
    out = {k: run[k] for k in RUN_KEYS if k in run}
    out["epochs_done"] = parent["epochs_done"] + run["epochs_done"]
    out["cpu_minutes"] = round(parent["cpu_minutes"] + run["cpu_minutes"], 1)
    out.update({k: v for k, v in parent.items() if k.startswith("run_") and k.endswith("_steps")})
    out[f"run_{run_id}_steps"] = run.get("steps")
    earlier = parent.get("runs")
    out["runs"] = f"{earlier}; run {run_id}: {note}" if earlier else f"run {run_id}: {note}"
    return out


def eval_entry(path: str | Path) -> dict[str, Any]:
    """An ``evaluate --json`` result without its per-image records (ValueError when it is not one)."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable evaluation JSON ({exc})") from exc
    if not isinstance(result, dict) or "nme_2d" not in result or "n" not in result:
        raise ValueError(f"{path}: not an `evaluate --json` result (no n / nme_2d)")
    return {k: v for k, v in result.items() if k not in DROPPED_EVAL_KEYS}


def write_card(bundle: str | Path, parent: str | Path, run_id: int, note: str, evals: dict[str, Path]) -> dict:
    """Rewrite ``bundle``'s bundle.json with its lineage on ``parent`` and the ``evals`` (metrics key →
    evaluation JSON); returns the new metadata. Nothing is written when an input is invalid."""
    meta, parent_meta = read_metadata(bundle), read_metadata(parent)
    if not evals:
        raise ValueError("no --eval given: a shipped bundle states the evaluations that decided it")
    meta["training"] = lineage(parent_meta.get("training", {}), meta.get("training", {}), run_id, note)
    metrics = {key: eval_entry(path) for key, path in evals.items()}
    bins_note = parent_meta.get("metrics", {}).get("benchmark_bins")
    if bins_note is not None:
        metrics["benchmark_bins"] = bins_note
    meta["metrics"] = metrics
    write_files_atomically({Path(bundle) / META_FILE: metadata_bytes(meta)})
    return meta


def _key_file(text: str) -> tuple[str, Path]:
    key, sep, file = text.partition("=")
    if not sep or not key or not file:
        raise argparse.ArgumentTypeError(f"expected KEY=FILE, got {text!r}")
    return key, Path(file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True, help="the run's bundle (train.py --bundle-out)")
    ap.add_argument("--parent", type=Path, required=True, help="the bundle the run started from (--init-from)")
    ap.add_argument("--run-id", type=int, required=True, help="the run's number (docs/training-journal.md)")
    ap.add_argument("--note", required=True, help="one line on what the run did, for the lineage text")
    ap.add_argument(
        "--eval", type=_key_file, action="append", default=[], metavar="KEY=FILE", help="metrics key = evaluate JSON"
    )
    args = ap.parse_args(argv)
    try:
        meta = write_card(args.bundle, args.parent, args.run_id, args.note, dict(args.eval))
    except (ValueError, NoWeightsError) as exc:
        ap.error(str(exc))
    t = meta["training"]
    print(f"{args.bundle / META_FILE}: {t['epochs_done']} epochs, {t['cpu_minutes']} CPU-minutes in all")
    for key, m in meta["metrics"].items():
        if isinstance(m, dict):
            print(f"  {key}: balanced NME 2D {m['nme_2d']['balanced']:.3f} % on {m['n']} faces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

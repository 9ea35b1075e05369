"""training.model_card: a chained run's lineage and evaluation figures in bundle.json."""

from __future__ import annotations

import json

import pytest

from engine.bundle import FORMAT, META_FILE
from engine.errors import NoWeightsError
from training import model_card

BINS = {"0-30": 2.6, "30-60": 3.4, "60-90": 4.4, "balanced": 3.47, "mean": 3.0}


def _bundle(folder, training, metrics=None, **extra):
    folder.mkdir()
    meta = {"format": FORMAT, "training": training, "metrics": metrics or {}, **extra}
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return folder


def _eval(path, n=999):
    path.write_text(json.dumps({"n": n, "missed": 999 - n, "nme_2d": BINS, "per_image": [{"image": "a"}]}))
    return path


@pytest.fixture
def parent(tmp_path):
    training = {
        "landmark_weight": 64.0,
        "epochs_done": 77,
        "cpu_minutes": 1070.5,
        "run_22_steps": 3561,
        "runs": "run 1: from scratch; run 22: 3 more epochs",
    }
    return _bundle(tmp_path / "parent", training, {"benchmark_bins": "|yaw| bins", "old": {"n": 1}})


@pytest.fixture
def run(tmp_path):
    training = {
        "landmark_weight": 256.0,
        "augmentation": "light",
        "epochs_done": 3,
        "steps": 3561,
        "cpu_minutes": 57.46,
    }
    return _bundle(tmp_path / "run", training, {"aflw2000_dev_roi": {"n": 999}}, files={"weights": {"name": "w.pt"}})


def test_lineage_sums_epochs_and_minutes_and_appends_the_run(parent, run, tmp_path):
    meta = model_card.write_card(run, parent, 23, "3 epochs, landmark weight 256", {"roi": _eval(tmp_path / "e.json")})
    t = meta["training"]
    assert (t["epochs_done"], t["cpu_minutes"]) == (80, 1128.0)
    assert (t["run_22_steps"], t["run_23_steps"]) == (3561, 3561)
    assert t["runs"] == "run 1: from scratch; run 22: 3 more epochs; run 23: 3 epochs, landmark weight 256"
    assert t["landmark_weight"] == 256.0 and t["augmentation"] == "light"  # the run's recipe, not the parent's
    assert meta["files"] == {"weights": {"name": "w.pt"}}  # the rest is kept
    assert json.loads((run / META_FILE).read_text()) == meta


def test_metrics_are_the_evaluations_without_per_image_records(parent, run, tmp_path):
    meta = model_card.write_card(
        run, parent, 23, "x", {"roi": _eval(tmp_path / "a.json"), "det": _eval(tmp_path / "b.json", n=989)}
    )
    assert set(meta["metrics"]) == {"roi", "det", "benchmark_bins"}  # the training-time figures are replaced
    assert meta["metrics"]["det"] == {"n": 989, "missed": 10, "nme_2d": BINS}
    assert meta["metrics"]["benchmark_bins"] == "|yaw| bins"


def test_a_run_is_not_counted_twice(parent, run, tmp_path):
    e = {"roi": _eval(tmp_path / "e.json")}
    model_card.write_card(run, parent, 23, "x", e)
    before = (run / META_FILE).read_text()
    with pytest.raises(ValueError, match="already has a lineage"):
        model_card.write_card(run, parent, 23, "x", e)
    assert (run / META_FILE).read_text() == before


@pytest.mark.parametrize("content", ["not json", json.dumps({"n": 3})])
def test_bad_evaluation_file_writes_nothing(parent, run, tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    before = (run / META_FILE).read_text()
    with pytest.raises(ValueError, match="bad.json"):
        model_card.write_card(run, parent, 23, "x", {"roi": bad})
    assert (run / META_FILE).read_text() == before


def test_not_a_bundle_and_no_evaluations_are_refused(parent, run, tmp_path):
    with pytest.raises(NoWeightsError, match="no model bundle"):
        model_card.write_card(tmp_path, parent, 23, "x", {"roi": _eval(tmp_path / "e.json")})
    with pytest.raises(ValueError, match="no --eval"):
        model_card.write_card(run, parent, 23, "x", {})


def test_cli_parses_key_file_pairs(parent, run, tmp_path, capsys):
    e = _eval(tmp_path / "e.json")
    argv = ["--bundle", str(run), "--parent", str(parent), "--run-id", "23", "--note", "x", "--eval", f"roi={e}"]
    assert model_card.main(argv) == 0
    assert "80 epochs" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        model_card.main(
            ["--bundle", str(run), "--parent", str(parent), "--run-id", "1", "--note", "x", "--eval", "roi"]
        )

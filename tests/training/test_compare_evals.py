"""Face-by-face comparison of two evaluate --json results (training.compare_evals)."""

import json

import pytest

from training.compare_evals import compare, main


def _records(values):
    """values: [(abs_yaw, nme or None)] → per_image records named image00000.jpg, …"""
    return [
        {"image": f"image{i:05d}.jpg", "abs_yaw": y, "nme_2d": v, "nme_3d": None if v is None else 2 * v}
        for i, (y, v) in enumerate(values)
    ]


def test_scores_both_on_the_images_both_found():
    a = _records([(10, 2.0), (45, 3.0), (75, None), (80, 5.0)])
    b = _records([(10, 1.0), (45, 3.5), (75, 9.0), (80, None)])
    r = compare(a, b)
    assert (r["common"], r["only_a"], r["only_b"]) == (2, 1, 1)
    assert r["a"]["0-30"] == 2.0 and r["b"]["0-30"] == 1.0
    assert r["a"]["30-60"] == 3.0 and r["b"]["30-60"] == 3.5
    assert r["a"]["mean"] == pytest.approx(2.5) and r["b"]["mean"] == pytest.approx(2.25)
    assert r["changes"][0] == ("image00000.jpg", 10.0, 2.0, 1.0)  # the largest |change| first
    assert compare(a, b, key="nme_3d")["b"]["30-60"] == 7.0


def test_refuses_different_image_lists_and_nothing_in_common():
    a = _records([(10, 2.0), (45, None)])
    with pytest.raises(ValueError, match="different image lists"):
        compare(a, a[:1])
    with pytest.raises(ValueError, match="no scored image in common"):
        compare(a, _records([(10, None), (45, 1.0)]))


def test_command_prints_the_common_figures_and_names_a_file_without_records(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"per_image": _records([(10, 2.0), (45, 3.0), (75, 4.0)])}))
    b.write_text(json.dumps({"per_image": _records([(10, 2.5), (45, 3.0), (75, None)])}))
    assert main([str(a), str(b), "--top", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 images scored by both; 1 only by A, 0 only by B"
    assert out[-1].split() == ["image00000.jpg", "10.0", "2.00", "->", "2.50"]
    (tmp_path / "old.json").write_text(json.dumps({"nme_2d": {}}))
    assert main([str(tmp_path / "old.json"), str(b)]) == 1
    assert "no per_image records" in capsys.readouterr().err

"""The architecture search runs a tiny trial end to end: train, export, measure, Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the search needs the 'train' extra (torch)")
pytest.importorskip("optuna", reason="the search needs the 'train' extra (optuna)")

from models import search


def test_a_tiny_search_trains_exports_and_reports_its_front(tmp_path: Path, synthetic_omniglot: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from models import data

    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(search, "SPACE", {"width": [8], "blocks": [3, 4], "size": [32], "font_share": [0.0],
                                          "preprocess": ["skeleton-ink-v1"]})
    out = tmp_path / "search"
    args = ["--out", str(out), "--data", str(synthetic_omniglot), "--trials", "2", "--episodes", "4",
            "--ways", "8", "--queries", "3", "--threads", "1", "--sampler", "exhaustive"]
    search.main(args)
    report = json.loads((out / "front.json").read_text())
    assert len(report["trials"]) == 2 and report["front"]
    for row in report["trials"]:
        assert 0 <= row["quality"] <= 1 and row["latency_ms"] > 0
        assert (out / f"trial-{row['trial']:03d}" / "encoder.onnx").is_file()
        assert row["preprocess"] == "skeleton-ink-v1"
    # the study is kept: asking for the same number of trials again trains nothing more; the
    # models are timed again side by side, here beside one of them as the baseline
    baseline = out / "trial-000" / "encoder.onnx"
    search.main([*args, "--baseline", str(baseline)])
    again = json.loads((out / "front.json").read_text())
    assert len(again["trials"]) == 2 and again["baseline_ms"] > 0
    assert again["budget_ms"] == min(1.5, 1.5 * again["baseline_ms"])
    for row in again["trials"]:
        assert row["latency_ms_during"] > 0 and row["latency_ratio"] == row["latency_ms"] / again["baseline_ms"]


def test_pareto_front() -> None:
    rows = [{"quality": 0.9, "latency_ms": 1.0}, {"quality": 0.8, "latency_ms": 2.0},
            {"quality": 0.95, "latency_ms": 3.0}, {"quality": 0.7, "latency_ms": 0.5}]
    assert search.pareto_front(rows) == [rows[3], rows[0], rows[2]]


def test_fix_pins_choices_and_refuses_unknown_ones() -> None:
    space = search.fixed_space(["size=32", "preprocess=skeleton-ink-v2"])
    assert space["size"] == [32] and space["preprocess"] == ["skeleton-ink-v2"]
    assert space["width"] == search.SPACE["width"]  # the rest is searched as before
    with pytest.raises(SystemExit, match="no choice named"):
        search.fixed_space(["colour=red"])
    with pytest.raises(SystemExit, match="size is one of"):
        search.fixed_space(["size=48"])


def test_a_choice_drawn_again_is_not_trained_twice(tmp_path: Path, synthetic_omniglot: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from models import data

    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(search, "SPACE", {"width": [8], "blocks": [3], "size": [32], "font_share": [0.0],
                                          "preprocess": ["skeleton-v2"]})
    trained = []
    real = search.run_trial
    monkeypatch.setattr(search, "run_trial", lambda params, out, args: trained.append(out) or real(params, out, args))
    out = tmp_path / "search"
    search.main(["--out", str(out), "--data", str(synthetic_omniglot), "--trials", "2", "--episodes", "4",
                 "--ways", "8", "--queries", "3", "--threads", "1"])
    assert len(trained) == 1  # the only combination, drawn twice
    report = json.loads((out / "front.json").read_text())
    assert [r["trial"] for r in report["trials"]] == [0]

"""The benchmark script runs and reports every figure (speed itself is not asserted here)."""

from __future__ import annotations

import json

import pytest

from benchmarks import encoder_speed


def test_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    encoder_speed.main(["--runs", "1", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("single_ms_median", "single_ms_p95", "batch_images_per_s", "end_to_end_images_per_s"):
        assert result[key] > 0
    assert result["threads"] == 2


def test_app_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    from benchmarks import app

    result = app.main(["--trials", "3", "--starts", "1", "--data", "/nonexistent-omniglot", "--json"])
    assert result["pen_up_to_paint_ms_median"] > 0 and result["start_s_median"] > 0  # type: ignore[operator]
    out = capsys.readouterr().out
    assert "pen lifted" in out and "canvas fidelity skipped" in out


def test_speed_comparison_alternates_and_reports_ratios(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    from benchmarks import compare_speed
    from protoglyph.core.encoder import default_model_path
    from tests.model_factory import make_encoder

    assert compare_speed.alternate(3) == [[0, 1], [1, 0], [0, 1]]
    candidate = make_encoder(tmp_path / "two.onnx", preprocess="skeleton-ink-v2")
    result = compare_speed.main(["--model", str(candidate), "--rounds", "1", "--no-cli", "--json"])
    assert set(result["ratio"]) == set(compare_speed.FIGURES)  # type: ignore[arg-type]
    assert all(v > 0 for v in result["ratio"].values())  # type: ignore[union-attr]
    out = capsys.readouterr().out
    assert "one image with preprocessing" in out and default_model_path().name in out

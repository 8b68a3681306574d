"""The benchmark script runs and reports every figure (speed itself is not asserted here)."""

from __future__ import annotations

import json

import pytest

from models import benchmark


def test_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark.main(["--runs", "1", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("single_ms_median", "single_ms_p95", "batch_images_per_s", "end_to_end_images_per_s"):
        assert result[key] > 0
    assert result["threads"] == 2


def test_app_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    from models import app_benchmark

    result = app_benchmark.main(["--trials", "3", "--starts", "1", "--data", "/nonexistent-omniglot", "--json"])
    assert result["pen_up_to_paint_ms_median"] > 0 and result["start_s_median"] > 0  # type: ignore[operator]
    out = capsys.readouterr().out
    assert "pen lifted" in out and "canvas fidelity skipped" in out

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
